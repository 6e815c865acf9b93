"""The bad-input corpus: every CLI verb fed broken data, configs, flags, models and adapters, and broken disks.

Each case must end with a non-zero exit and exactly one ``wsteer: error:`` line that names what was wrong, where
(file:line, a flag or a config key) and how to fix it (``fix:``), without a traceback, and must leave the
directory it was run in exactly as it was (no partial output file or directory).

Run: ``python -m pytest tests/reliability/test_bad_inputs.py -q`` (the count of cases is the corpus size).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from adapter_helpers import one_line_error
from reliability_helpers import build_workspace, full_disk, good_pair, jsonl, read_only, snapshot

CASES: dict[str, callable] = {}


def case(verb: str, name: str):
    """Register ``fn(ws, work, monkeypatch) -> (argv, [fragments the error line must contain])``."""

    def register(fn):
        CASES[f"{verb}:{name}"] = fn
        return fn

    return register


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


# --------------------------------------------------------------------------------------------- pairs lint
@case("pairs lint", "malformed JSONL line")
def _(ws, w, mp):
    f = write(w / "p.jsonl", '{"id": "a", "pos": "honest", "neg": "dishonest"}\n{"id": "b", pos\n')
    return ["pairs", "lint", f], [f"{f}:2", "malformed JSON"]


@case("pairs lint", "missing field")
def _(ws, w, mp):
    f = write(w / "p.jsonl", '{"id": "a", "pos": "honest"}\n')
    return ["pairs", "lint", f], [f"{f}:1", "'neg'"]


@case("pairs lint", "wrong type")
def _(ws, w, mp):
    f = write(w / "p.jsonl", '{"id": "a", "pos": 3, "neg": "dishonest"}\n')
    return ["pairs", "lint", f], [f"{f}:1", "'pos'"]


@case("pairs lint", "empty string")
def _(ws, w, mp):
    f = write(w / "p.jsonl", '{"id": "a", "pos": "honest", "neg": "  "}\n')
    return ["pairs", "lint", f], [f"{f}:1", "'neg'"]


@case("pairs lint", "non-UTF-8 bytes")
def _(ws, w, mp):
    f = write(w / "p.jsonl", b'{"id": "a", "pos": "hon\xffest", "neg": "dishonest"}\n')
    return ["pairs", "lint", f], [f"{f}:1", "UTF-8"]


@case("pairs lint", "huge line")
def _(ws, w, mp):
    f = write(w / "p.jsonl", '{"id": "a", "pos": "' + "x" * (17 * 2**20) + '", "neg": "y"}\n')
    return ["pairs", "lint", f], [f"{f}:1", "MiB"]


@case("pairs lint", "unknown YAML key")
def _(ws, w, mp):
    f = write(w / "p.yaml", "pairs:\n  - id: a\n    pos: honest\n    neg: dishonest\n    colour: red\n")
    return ["pairs", "lint", f], [f"{f}:2", "'colour'"]


@case("pairs lint", "missing file")
def _(ws, w, mp):
    return ["pairs", "lint", w / "nowhere.yaml"], ["nowhere.yaml", "not found"]


# --------------------------------------------------------------------------------------------- pairs generate
def _generate(ws, w, *overrides):
    return ["pairs", "generate", f"model.name={ws['tiny']}", f"out={w / 'out' / 'raw.jsonl'}", *overrides]


@case("pairs generate", "unknown YAML key")
def _(ws, w, mp):
    f = write(w / "g.yaml", f"model: {{name: {ws['tiny']}}}\nout: {w / 'out' / 'raw.jsonl'}\nbatchsize: 2\n")
    return ["pairs", "generate", "--config", f], [f"{f}:3", "'batch_size'"]


@case("pairs generate", "non-numeric override")
def _(ws, w, mp):
    return _generate(ws, w, "batch_size=lots"), ["batch_size", "integer"]


@case("pairs generate", "template without {persona}")
def _(ws, w, mp):
    return _generate(ws, w, "template.text=Be nice."), ["template.text", "found 0"]


@case("pairs generate", "template with two {persona}")
def _(ws, w, mp):
    return _generate(ws, w, "template.text=Be {persona} and {persona}."), ["template.text", "found 2"]


@case("pairs generate", "template file without {persona}")
def _(ws, w, mp):
    f = write(w / "t.yaml", "templates:\n  - id: plain\n    text: Be nice to everyone.\n")
    return _generate(ws, w, "template.text=null", f"template.file={f}", "template.id=plain"), [str(f), "{persona}"]


@case("pairs generate", "missing model path")
def _(ws, w, mp):
    return _generate(ws, w, f"model.name={w / 'no-model'}"), ["model.name", "not found"]


@case("pairs generate", "tokenizer without chat template")
def _(ws, w, mp):
    return _generate(ws, w, f"model.name={ws['no_template']}"), ["model.name", "chat template"]


@case("pairs generate", "pickle-only model")
def _(ws, w, mp):
    return _generate(ws, w, f"model.name={ws['pickled_model']}"), ["model.name", "pickle", "allow_pickle"]


@case("pairs generate", "unknown pair id")
def _(ws, w, mp):
    f = write(w / "pairs.yaml", "pairs:\n  - id: honesty\n    pos: honest\n    neg: dishonest\n")
    return _generate(ws, w, "pair.pos=null", "pair.neg=null", f"pair.file={f}", "pair.id=honsety"), ["honsety"]


# --------------------------------------------------------------------------------------------- pairs curate
def _curate(w, content, *extra):
    f = write(w / "raw.jsonl", content)
    return ["pairs", "curate", f, "--out", w / "out" / "curated.jsonl", *extra], f


@case("pairs curate", "malformed JSONL line")
def _(ws, w, mp):
    argv, f = _curate(w, jsonl(good_pair(0)) + "{nope\n")
    return argv, [f"{f}:2", "malformed JSON"]


@case("pairs curate", "missing field")
def _(ws, w, mp):
    argv, f = _curate(w, jsonl({k: v for k, v in good_pair(0).items() if k != "rej"}))
    return argv, [f"{f}:1", "'rej'"]


@case("pairs curate", "wrong type")
def _(ws, w, mp):
    argv, f = _curate(w, jsonl(good_pair(0), good_pair(1, cho=["a", "list"])))
    return argv, [f"{f}:2", "cho"]


@case("pairs curate", "unknown override key")
def _(ws, w, mp):
    argv, _ = _curate(w, jsonl(good_pair(0)), "colour=red")
    return argv, ["colour=red", "'colour'"]


@case("pairs curate", "full disk")
def _(ws, w, mp):
    argv, _ = _curate(w, jsonl(*(good_pair(i) for i in range(4))), "length.enabled=false")
    full_disk(mp)
    return argv, ["curated", "No space left", "free disk space"]


@case("pairs curate", "output directory not writable (chmod)")
def _(ws, w, mp):
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod does not stop root writing (the simulated variant covers this)")
    argv, _ = _curate(w, jsonl(*(good_pair(i) for i in range(4))), "length.enabled=false")
    read_only(mp, w / "out", "chmod")
    return argv, [str(w / "out"), "writable"]


@case("pairs curate", "output directory not writable (simulated)")
def _(ws, w, mp):
    argv, _ = _curate(w, jsonl(*(good_pair(i) for i in range(4))), "length.enabled=false")
    read_only(mp, w / "out", "simulated")
    return argv, [str(w / "out"), "writable"]


# --------------------------------------------------------------------------------------------- templates screen
def _screen(ws, w, *overrides):
    return [
        "templates",
        "screen",
        f"model.name={ws['tiny']}",
        f"out_dir={w / 'out'}",
        "prompts=[Hello]",
        "sampling.max_new_tokens=2",
        *overrides,
    ]


@case("templates screen", "missing pairs file")
def _(ws, w, mp):
    return _screen(ws, w, f"pairs_file={w / 'none.yaml'}"), ["pairs_file", "not found"]


@case("templates screen", "template with two {persona}")
def _(ws, w, mp):
    f = write(w / "t.yaml", "templates:\n  - id: twice\n    text: Be {persona}, truly {persona}.\n")
    return _screen(ws, w, f"templates_file={f}"), [str(f), "{persona}"]


# --------------------------------------------------------------------------------------------- train
def _train(ws, w, data, *overrides):
    return [
        "train",
        f"data={data}",
        f"model.name={ws['tiny']}",
        f"output_dir={w / 'out' / 'adapter'}",
        "progress=false",
        "num_threads=1",
        *overrides,
    ]


@case("train", "empty answer")
def _(ws, w, mp):
    f = write(w / "pairs.jsonl", jsonl(good_pair(0, cho=""), good_pair(1)))
    return _train(ws, w, f), [f"{f}:1", "'cho'"]


@case("train", "prompt longer than max_length")
def _(ws, w, mp):
    f = write(w / "pairs.jsonl", jsonl(good_pair(0), good_pair(1, prompt="word " * 200)))
    return _train(ws, w, f, "max_length=64"), [f"{f}:2", "max_length"]


@case("train", "missing data file")
def _(ws, w, mp):
    return _train(ws, w, w / "none.jsonl"), ["none.jsonl", "not found"]


@case("train", "NaN learning rate")
def _(ws, w, mp):
    return _train(ws, w, ws["pairs"], "learning_rate=nan"), ["learning_rate", "finite"]


@case("train", "unknown YAML key")
def _(ws, w, mp):
    f = write(w / "train.yaml", f"data: {ws['pairs']}\nmodel: {{name: {ws['tiny']}}}\nlearning_rat: 0.1\n")
    return ["train", "--config", f, f"output_dir={w / 'out' / 'adapter'}"], [f"{f}:3", "'learning_rate'"]


@case("train", "tokenizer without chat template")
def _(ws, w, mp):
    return _train(ws, w, ws["pairs"], f"model.name={ws['no_template']}"), ["model.name", "chat template"]


@case("train", "missing model path")
def _(ws, w, mp):
    return _train(ws, w, ws["pairs"], f"model.name={w / 'no-model'}"), ["model.name", "not found"]


# --------------------------------------------------------------------------------------------- adapters
def _steer(adapter, *extra):
    return ["adapters", "steer", adapter, "prompts=[Hi]", "sampling.max_new_tokens=2", *extra]


@case("adapters steer", "NaN alpha")
def _(ws, w, mp):
    return _steer(ws["adapter"], "alphas=[nan]"), ["alphas", "finite"]


@case("adapters steer", "infinite alpha")
def _(ws, w, mp):
    return _steer(ws["adapter"], "alphas=[-inf]"), ["alphas", "finite"]


@case("adapters steer", "non-numeric alpha")
def _(ws, w, mp):
    return _steer(ws["adapter"], "alphas=[big]"), ["alphas[0]", "number"]


@case("adapters steer", "missing adapter path")
def _(ws, w, mp):
    return _steer(w / "no-adapter", "alphas=[1]"), ["no-adapter", "not found"]


@case("adapters steer", "adapter for a different base")
def _(ws, w, mp):
    return _steer(ws["adapter"], "alphas=[1]", f"base={ws['other']}"), ["steering.json", "wrong base"]


@case("adapters steer", "pickle-only adapter")
def _(ws, w, mp):
    return _steer(ws["pickled_adapter"], "alphas=[1]"), [str(ws["pickled_adapter"]), "pickle", "safe_serialization"]


@case("adapters inspect", "pickle-only adapter")
def _(ws, w, mp):
    return ["adapters", "inspect", ws["pickled_adapter"]], [str(ws["pickled_adapter"]), "pickle"]


@case("adapters inspect", "missing adapter path")
def _(ws, w, mp):
    return ["adapters", "inspect", w / "no-adapter"], ["no-adapter", "not found"]


@case("adapters merge", "NaN alpha")
def _(ws, w, mp):
    return ["adapters", "merge", ws["adapter"], "alpha=nan", f"out={w / 'out' / 'merged'}"], ["alpha", "finite"]


@case("adapters merge", "adapter for a different base")
def _(ws, w, mp):
    argv = ["adapters", "merge", ws["adapter"], "alpha=1", f"out={w / 'out' / 'merged'}", f"base={ws['other']}"]
    return argv, ["steering.json", "wrong base"]


@case("adapters merge", "full disk")
def _(ws, w, mp):
    full_disk(mp)
    return ["adapters", "merge", ws["adapter"], "alpha=1", f"out={w / 'out' / 'merged'}"], ["No space left"]


@case("adapters merge", "output directory not writable (simulated)")
def _(ws, w, mp):
    read_only(mp, w / "out", "simulated")
    return ["adapters", "merge", ws["adapter"], "alpha=1", f"out={w / 'out' / 'merged'}"], ["writable"]


@case("adapters combine", "non-numeric weight")
def _(ws, w, mp):
    return ["adapters", "combine", f"{ws['adapter']}:abc", f"out={w / 'out' / 'mix'}"], ["'abc'", "ADAPTER:WEIGHT"]


@case("adapters combine", "NaN weight")
def _(ws, w, mp):
    return ["adapters", "combine", f"{ws['adapter']}:nan", f"out={w / 'out' / 'mix'}"], ["'nan'", "finite"]


@case("adapters combine", "full disk")
def _(ws, w, mp):
    full_disk(mp)
    argv = ["adapters", "combine", f"{ws['adapter']}:1", f"{ws['adapter']}:-0.5", f"out={w / 'out' / 'mix'}"]
    return argv, ["No space left"]


@case("adapters calibrate", "unknown key")
def _(ws, w, mp):
    return ["adapters", "calibrate", ws["adapter"], "targetkl=1"], ["targetkl", "'target_kl'"]


@case("adapters calibrate", "NaN target")
def _(ws, w, mp):
    return ["adapters", "calibrate", ws["adapter"], "target_kl=nan"], ["target_kl", "finite"]


@case("adapters export", "no calibrated α yet")
def _(ws, w, mp):
    argv = ["adapters", "export", ws["adapter"], "alpha=calibrated", f"out={w / 'out' / 'plus'}"]
    return argv, ["alpha", "no calibrated α", "wsteer adapters calibrate"]


@case("adapters export", "non-numeric alpha")
def _(ws, w, mp):
    argv = ["adapters", "export", ws["adapter"], "alpha=big", f"out={w / 'out' / 'plus'}"]
    return argv, ["alpha", "'big'", "calibrated"]


@case("adapters export", "full disk")
def _(ws, w, mp):
    full_disk(mp)
    return ["adapters", "export", ws["adapter"], "alpha=-1", f"out={w / 'out' / 'minus'}"], ["No space left"]


@case("adapters push", "offline")
def _(ws, w, mp):
    return ["adapters", "push", ws["adapter"], "repo_id=me/x"], ["HF_HUB_OFFLINE", "forbids uploading"]


@case("adapters push", "base recorded as a local directory")
def _(ws, w, mp):
    import huggingface_hub.constants

    mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    mp.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # never reached: refused before
    return ["adapters", "push", ws["adapter"], "repo_id=me/x"], ["adapter_config.json", "not a hub id", "base_id="]


@case("adapters card", "not a sweep summary")
def _(ws, w, mp):
    f = write(w / "summary.json", '{"stage": "train"}')
    return ["adapters", "card", ws["adapter"], f"sweep={f}"], [str(f), "not an eval sweep summary"]


@case("adapters card", "missing adapter path")
def _(ws, w, mp):
    return ["adapters", "card", w / "no-adapter"], ["no-adapter", "not found"]


# --------------------------------------------------------------------------------------------- eval
def _sweep(ws, w, adapter, *overrides):
    limits = ["prompts.limit=1", "sampling.max_new_tokens=2"]
    return ["eval", "sweep", adapter, f"out_dir={w / 'out'}", *limits, *overrides]


@case("eval sweep", "NaN alpha")
def _(ws, w, mp):
    return _sweep(ws, w, ws["adapter"], "alphas=[0, nan]"), ["alphas[1]", "finite"]


@case("eval sweep", "non-numeric alpha")
def _(ws, w, mp):
    return _sweep(ws, w, ws["adapter"], "alphas=[big]"), ["alphas[0]", "number"]


@case("eval sweep", "missing adapter path")
def _(ws, w, mp):
    return _sweep(ws, w, w / "no-adapter"), ["no-adapter", "not found"]


@case("eval sweep", "adapter for a different base")
def _(ws, w, mp):
    return _sweep(ws, w, ws["adapter"], f"base={ws['other']}"), ["steering.json", "wrong base"]


@case("eval ab", "NaN alpha in an arm")
def _(ws, w, mp):
    return ["eval", "ab", f"a=adapter:{ws['adapter']}@nan", "b=base", f"out_dir={w / 'out'}"], ["a:", "finite"]


@case("eval ab", "unreadable arm")
def _(ws, w, mp):
    return ["eval", "ab", "a=wat", "b=base", f"out_dir={w / 'out'}"], ["a:", "adapter:PATH@ALPHA"]


# --------------------------------------------------------------------------------------------- demo
@case("demo", "unknown YAML key")
def _(ws, w, mp):
    f = write(w / "demo.yaml", f"run_dir: {w / 'out'}\nmodel: {{name: {ws['tiny']}}}\nrun_dri: x\n")
    return ["demo", "--config", f], [f"{f}:3", "'run_dir'"]


@case("demo", "stage path outside the run directory")
def _(ws, w, mp):
    f = write(w / "demo.yaml", f"run_dir: {w / 'out'}\ncalibrate: {{report: {w.parent / 'escaped.json'}}}\n")
    return ["demo", "--config", f], [str(f), "calibrate.report", "run_dir"]


@case("demo", "template without {persona}")
def _(ws, w, mp):
    f = write(w / "demo.yaml", f"run_dir: {w / 'out'}\nmodel: {{name: {ws['tiny']}}}\ntemplate: {{text: Be nice.}}\n")
    return ["demo", "--config", f], ["template.text", "{persona}"]


# --------------------------------------------------------------------------------------------- the test
@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return build_workspace(tmp_path_factory.mktemp("workspace"))


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gets_one_clear_error_and_leaves_nothing_behind(name, ws, tmp_path, cli, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with monkeypatch.context() as mp:
        argv, fragments = CASES[name](ws, work, mp)
        workspace_before, before = snapshot(ws["tiny"].parent), snapshot(work)
        result = cli(*argv)
    assert result.code != 0, result
    line = one_line_error(result)
    assert "(fix: " in line, line
    for fragment in fragments:
        assert str(fragment) in line, (fragment, line)
    assert snapshot(work) == before, "a failed run left files behind"
    assert snapshot(ws["tiny"].parent) == workspace_before, "a failed run changed its inputs"


def test_cho_identical_to_rej_is_dropped_by_curate_and_named_in_the_dropped_file(tmp_path, cli):
    """Not an error: curation is where identical pairs go (the tiny demo trains on such pairs on purpose)."""
    raw = write(tmp_path / "raw.jsonl", jsonl(*(good_pair(i) for i in range(4)), good_pair(9, rej=good_pair(9)["cho"])))
    result = cli("pairs", "curate", raw, "--out", tmp_path / "curated.jsonl", "length.enabled=false")
    assert result.code == 0, result
    kept = [json.loads(line)["id"] for line in (tmp_path / "curated.jsonl").read_text().splitlines()]
    dropped = [json.loads(line)["id"] for line in (tmp_path / "curated.dropped.jsonl").read_text().splitlines()]
    assert "p9" in dropped and "p9" not in kept and len(kept) == 4


def test_the_corpus_covers_every_verb():
    verbs = {name.split(":")[0] for name in CASES}
    assert verbs >= {
        "pairs lint",
        "pairs generate",
        "pairs curate",
        "templates screen",
        "train",
        "adapters steer",
        "adapters merge",
        "adapters combine",
        "adapters calibrate",
        "adapters export",
        "adapters push",
        "adapters card",
        "adapters inspect",
        "eval sweep",
        "eval ab",
        "demo",
    }
    assert len(CASES) >= 30
