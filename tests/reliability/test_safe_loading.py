"""Safe loading: pickle weights only with an explicit flag, no checkpoint code run unless asked, and strings from data
files (pair, template and record ids) never choose where files are written.

Covered elsewhere and not repeated here: judge / second-opinion API keys never reach manifests, outputs or error
lines (tests/eval/test_ab.py::test_ab_with_judge_never_writes_the_key, tests/pairs/test_second_opinion.py); pickle-only
models and adapters refused by each CLI verb (tests/reliability/test_bad_inputs.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from reliability_helpers import good_pair, jsonl, snapshot
from safetensors.torch import load_file

from wsteer.errors import ModelLoadError
from wsteer.models import ModelConfig, load_model
from wsteer.testing import save_tiny_model


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("safe") / "tiny", seed=0)


def test_pickle_weights_load_only_with_allow_pickle_and_then_match(tiny_dir, tmp_path):
    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_dir, pickled)
    state = load_file(pickled / "model.safetensors")
    torch.save(state, pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="allow_pickle"):
        load_model(ModelConfig(name=str(pickled)))
    model = load_model(ModelConfig(name=str(pickled), allow_pickle=True))
    loaded = model.state_dict()
    for name, tensor in state.items():
        assert torch.equal(loaded[name], tensor), name


def test_checkpoint_code_is_not_run_unless_trust_remote_code(tiny_dir, tmp_path, monkeypatch):
    """A checkpoint that ships code (auto_map) loads with the library's own class; its code never runs."""
    shipped = tmp_path / "shipped_code"
    shutil.copytree(tiny_dir, shipped)
    marker = tmp_path / "code_ran"
    (shipped / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    config = json.loads((shipped / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
    (shipped / "config.json").write_text(json.dumps(config))
    try:
        model = load_model(ModelConfig(name=str(shipped)))
        assert type(model).__name__ == "LlamaForCausalLM"
    except ModelLoadError:
        pass  # refusing is also safe
    assert not marker.exists(), "code shipped with the checkpoint ran without trust_remote_code"


def test_trust_remote_code_is_passed_only_when_asked(tiny_dir, monkeypatch):
    from transformers import AutoModelForCausalLM

    seen = []
    real = AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        seen.append(kwargs.get("trust_remote_code"))
        return real(*args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    load_model(ModelConfig(name=str(tiny_dir)))
    load_model(ModelConfig(name=str(tiny_dir), trust_remote_code=True))
    assert seen == [False, True]


HOSTILE_IDS = ["../../escaped", "/tmp/wsteer-absolute-escape", "a/../../b", "..", "nul\\..\\x"]


def test_ids_from_data_files_never_become_paths(tiny_dir, tmp_path, cli, monkeypatch):
    """Pair, template and record ids with ../ or absolute paths: every file written stays in the output folder."""
    inputs, run = tmp_path / "inputs", tmp_path / "sandbox" / "run"
    inputs.mkdir()
    pairs = inputs / "pairs.yaml"
    pairs.write_text(f"pairs:\n  - id: {json.dumps(HOSTILE_IDS[0])}\n    pos: honest\n    neg: dishonest\n")
    templates = inputs / "templates.yaml"
    template_line = "    text: Pretend you're a {persona} person.\n"
    templates.write_text(f"templates:\n  - id: {json.dumps(HOSTILE_IDS[1])}\n" + template_line)
    raw = inputs / "raw.jsonl"
    raw.write_text(jsonl(*(good_pair(i, id=hostile) for i, hostile in enumerate(HOSTILE_IDS))))
    monkeypatch.chdir(inputs)
    outside_before = snapshot(tmp_path)
    generated = cli(
        "pairs",
        "generate",
        f"model.name={tiny_dir}",
        "pair.pos=null",
        "pair.neg=null",
        f"pair.file={pairs}",
        f"pair.id={HOSTILE_IDS[0]}",
        "template.text=null",
        f"template.file={templates}",
        f"template.id={HOSTILE_IDS[1]}",
        "prompts.limit=2",
        "sampling.max_new_tokens=2",
        f"out={run / 'raw.jsonl'}",
    )
    assert generated.code == 0, generated
    assert json.loads((run / "raw.jsonl").read_text().splitlines()[0])["pair_id"] == HOSTILE_IDS[0]
    curated = cli("pairs", "curate", raw, "--out", run / "curated.jsonl", "length.enabled=false")
    assert curated.code == 0, curated
    new = set(snapshot(tmp_path)) - set(outside_before)
    assert new and all(path.startswith("sandbox/run") or path == "sandbox" for path in new), sorted(new)
    assert not list(Path("/tmp").glob("wsteer-absolute-escape*"))
