"""`wsteer pairs generate` on the tiny model: pairing, seeds, batching, the record schema, resume and kill -9."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from wsteer.pairs.generate import GenerateConfig, PairSource, TemplateSource, generate_pairs, run_dir_for

from wsteer.config import load_config
from wsteer.errors import ConfigError, DataError, WsteerError
from wsteer.generation import HFBackend, SamplingConfig, derive_seed
from wsteer.leak import PersonaVocabularyProcessor
from wsteer.records import PairRecord

REPO_ROOT = Path(__file__).resolve().parents[2]

TEMPLATE = "Pretend you're a {persona} person."


class RecordingBackend(HFBackend):
    """HFBackend that remembers every batch it generated and the extra processors it was given."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches, self.processors = [], []

    def _generate_batch(self, batch, ids, sampling, extra_processors):
        self.batches.append(list(batch))
        self.processors.append(list(extra_processors))
        return super()._generate_batch(batch, ids, sampling, extra_processors)


def config(tmp_path, **changes):
    cfg = GenerateConfig(
        out=str(tmp_path / "raw.jsonl"),
        batch_size=4,
        sampling=SamplingConfig(max_new_tokens=6, temperature=1.0, top_p=1.0),
    )
    cfg.prompts.limit = 5
    for key, value in changes.items():
        target = cfg
        *parents, name = key.split(".")
        for parent in parents:
            target = getattr(target, parent)
        setattr(target, name, value)
    return cfg


def read_lines(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_pairs_share_a_batch_and_a_seed_and_lines_have_the_schema(tiny, tmp_path):
    model, tokenizer = tiny
    backend = RecordingBackend(model, tokenizer, batch_size=4)
    cfg = config(tmp_path)
    result = generate_pairs(cfg, backend=backend, progress=False)
    assert (result.written, result.skipped, result.total) == (5, 0, 5)
    for batch in backend.batches:
        assert len(batch) % 2 == 0
        for pos_row, neg_row in zip(batch[0::2], batch[1::2]):
            assert pos_row.seed == neg_row.seed and pos_row.tag[:2] == neg_row.tag[:2]
            assert pos_row.messages[0]["content"] == "Pretend you're a honest person."
            assert neg_row.messages[0]["content"] == "Pretend you're a dishonest person."
            assert pos_row.messages[1] == neg_row.messages[1]  # same user turn, persona-free
    records = read_lines(cfg.out)
    assert len(records) == 5 and len({r["domain"] for r in records}) == 5  # limit spreads over domains
    for record in records:
        PairRecord(**{k: record[k] for k in PairRecord.__dataclass_fields__ if k in record})
        assert {
            "id",
            "prompt",
            "cho",
            "rej",
            "pos",
            "neg",
            "template",
            "model",
            "seed",
            "sampling",
            "domain",
            "finish",
        } <= set(record)
        assert record["seed"] == derive_seed(0, record["id"], 0) and record["template"] == TEMPLATE
        assert "Pretend" not in record["prompt"]
    manifest = json.loads((run_dir_for(cfg.out) / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["pairs_written"] == 5
    reloaded = load_config(GenerateConfig, run_dir_for(cfg.out) / "config.yaml")
    assert reloaded == cfg


def test_same_seed_means_only_the_persona_differs(tiny, tmp_path):
    """Common random numbers: with identical personas, sampled cho and rej are identical token for token."""
    model, tokenizer = tiny
    cfg = config(tmp_path, **{"pair": PairSource(pos="calm", neg="calm")})
    generate_pairs(cfg, backend=HFBackend(model, tokenizer, batch_size=4), progress=False)
    records = read_lines(cfg.out)
    assert all(r["cho"] == r["rej"] for r in records)
    assert len({r["cho"] for r in records}) == len(records)  # and it is sampling, not a constant


def test_rerun_resumes_without_rewriting_finished_lines(tiny, tmp_path):
    model, tokenizer = tiny
    backend = HFBackend(model, tokenizer, batch_size=4)
    cfg = config(tmp_path)
    generate_pairs(cfg, backend=backend, progress=False)
    first = Path(cfg.out).read_bytes()
    cfg.prompts.limit = 9
    result = generate_pairs(cfg, backend=backend, progress=False)
    assert (result.written, result.skipped) == (4, 5)
    assert Path(cfg.out).read_bytes().startswith(first)
    again = generate_pairs(cfg, backend=None, progress=False)  # nothing to do: the model is not even loaded
    assert again.written == 0 and len(read_lines(cfg.out)) == 9


def test_torn_tail_is_cut_and_regenerated(tiny, tmp_path):
    model, tokenizer = tiny
    backend = HFBackend(model, tokenizer, batch_size=4)
    cfg = config(tmp_path)
    generate_pairs(cfg, backend=backend, progress=False)
    whole = Path(cfg.out).read_bytes().splitlines(keepends=True)
    Path(cfg.out).write_bytes(b"".join(whole[:3]) + whole[3][:25])  # a kill in the middle of line 4
    generate_pairs(cfg, backend=backend, progress=False)
    records = read_lines(cfg.out)
    assert sorted(r["id"] for r in records) == sorted(json.loads(line)["id"] for line in whole)
    assert Path(cfg.out).read_bytes().startswith(b"".join(whole[:3]))


def test_resume_refuses_a_file_from_another_configuration(tiny, tmp_path):
    model, tokenizer = tiny
    backend = HFBackend(model, tokenizer, batch_size=4)
    cfg = config(tmp_path)
    generate_pairs(cfg, backend=backend, progress=False)
    with pytest.raises(DataError, match="different neg"):
        generate_pairs(
            config(tmp_path, **{"pair": PairSource(pos="honest", neg="deceitful")}), backend=backend, progress=False
        )
    with pytest.raises(DataError, match="another base seed"):
        generate_pairs(config(tmp_path, seed=1), backend=backend, progress=False)


def test_vocabulary_filter_is_passed_per_batch(tiny, tmp_path):
    model, tokenizer = tiny
    backend = RecordingBackend(model, tokenizer, batch_size=4)
    cfg = config(tmp_path, **{"vocabulary.mode": "ban", "vocabulary.extra_terms": ["truth"]})
    generate_pairs(cfg, backend=backend, progress=False)
    for batch, processors in zip(backend.batches, backend.processors):
        (processor,) = processors
        assert isinstance(processor, PersonaVocabularyProcessor) and len(processor.vocabularies) == len(batch)
        assert processor.vocabularies[0].terms == ("honest", "dishonest", "truth")


def test_pair_and_template_from_files(tiny, tmp_path):
    model, tokenizer = tiny
    pairs_file, templates_file = tmp_path / "pairs.yaml", tmp_path / "templates.yaml"
    pairs_file.write_text("- id: brave\n  pos: brave\n  neg: cowardly\n- id: care\n  pos: caring\n  neg: callous\n")
    templates_file.write_text(
        "- id: who\n  text: Pretend you're someone who {persona}.\n- id: adj\n  text: You are a {persona} assistant.\n"
    )
    cfg = config(
        tmp_path,
        pair=PairSource(file=str(pairs_file), id="care"),
        template=TemplateSource(file=str(templates_file), id="adj"),
    )
    cfg.prompts.limit = 1
    generate_pairs(cfg, backend=HFBackend(model, tokenizer, batch_size=4), progress=False)
    (record,) = read_lines(cfg.out)
    assert (record["pos"], record["neg"], record["template"]) == ("caring", "callous", "You are a {persona} assistant.")
    manifest = json.loads((run_dir_for(cfg.out) / "manifest.json").read_text())
    assert set(manifest["inputs"]) == {"prompts", "pairs", "templates"}
    with pytest.raises(WsteerError, match="takes a clause persona"):
        generate_pairs(
            config(
                tmp_path,
                pair=PairSource(file=str(pairs_file), id="care"),
                template=TemplateSource(file=str(templates_file), id="who"),
            ),
            progress=False,
        )


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"pair": PairSource()}, "no persona pair given"),
        ({"pair": PairSource(file="x.yaml", pos="a", neg="b")}, "both a file and inline personas"),
        ({"template": TemplateSource(text="Be good.")}, "exactly one {persona} slot"),
    ],
)
def test_config_errors_say_where(tmp_path, changes, fragment):
    with pytest.raises(ConfigError) as err:
        generate_pairs(config(tmp_path, **changes), progress=False)
    assert fragment in str(err.value)


def test_batch_size_must_be_even():
    with pytest.raises(ValueError, match="even"):
        GenerateConfig(batch_size=3)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_kill_then_rerun_gives_every_prompt_once_and_matches_an_uninterrupted_run(tmp_path, cli, monkeypatch, sig):
    """A real `wsteer pairs generate` subprocess killed mid-run (when its log holds 2 lines), then the same command
    rerun: no prompt lost or repeated, finished bytes kept, and the file equals an uninterrupted run's. SIGINT
    (Ctrl-C) must also end the first run cleanly: exit 130 and one line, no traceback."""
    from wsteer.testing import save_tiny_model

    model_dir = save_tiny_model(tmp_path / "tiny")
    out = tmp_path / "raw.jsonl"
    n_prompts = 16
    cfg_path = tmp_path / "generate.yaml"
    cfg_path.write_text(
        yaml.safe_dump(
            {
                "model": {"name": str(model_dir)},
                "out": str(out),
                "batch_size": 2,
                "prompts": {"limit": n_prompts},
                "sampling": {"max_new_tokens": 32, "temperature": 1.0, "top_p": 1.0},
            }
        )
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "wsteer", "pairs", "generate", "--config", str(cfg_path)]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.01)
    assert process.poll() is None, f"finished or failed before the kill: {process.stderr.read().decode()[-2000:]}"
    process.send_signal(sig)
    code = process.wait(timeout=120)
    stderr = process.stderr.read().decode()
    if sig == signal.SIGINT:
        assert code == 130, stderr[-2000:]
        assert "Traceback" not in stderr
        assert stderr.rstrip().splitlines()[-1].startswith("wsteer: interrupted"), stderr[-2000:]
    before = out.read_bytes()
    finished = before[: before.rfind(b"\n") + 1]  # a line torn by the kill is not finished
    n_finished = finished.count(b"\n")
    assert 2 <= n_finished < n_prompts
    monkeypatch.chdir(tmp_path)
    rerun = cli("pairs", "generate", "--config", cfg_path)  # the same command, in-process to save a start-up
    assert rerun.code == 0, rerun
    assert f"{n_prompts - n_finished} pairs written, {n_finished} already done" in rerun.out
    after = out.read_bytes()
    assert after.startswith(finished)
    ids = [json.loads(line)["id"] for line in after.splitlines()]
    assert len(ids) == n_prompts == len(set(ids))
    straight = tmp_path / "straight.jsonl"
    assert cli("pairs", "generate", "--config", cfg_path, f"out={straight}").code == 0
    assert after == straight.read_bytes()
