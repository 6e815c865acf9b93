"""``wsteer demo`` on a tiny random model: every stage runs, a rerun skips them all, a changed input reruns only
the stages downstream of it, and the report carries the checks."""

import json

import pytest
import yaml

from wsteer.config import load_config
from wsteer.pipeline.demo import STAGES, DemoConfig, run_demo
from wsteer.testing import save_tiny_model

# Gibberish from random weights would fail every content rule: the tiny run switches them off, the real one keeps
# them (tests/test_demo_smollm2_slow.py).
TINY_DEMO = {
    "heldout_prompts": 3,
    "generate": {"prompts": {"limit": 6}, "sampling": {"max_new_tokens": 8}, "batch_size": 12},
    "curate": {
        "truncated": {"action": "keep"},
        "degenerate": {"enabled": False},
        "language": {"enabled": False},
        "refusal": {"action": "keep"},
        "length": {"enabled": False},
        "near_identical": {"enabled": False},
        "abandon_share": 1.0,
    },
    "train": {"epochs": 1, "batch_size": 2, "learning_rate": 0.01},
    "calibrate": {"max_prompts": 2, "max_new_tokens": 4, "target_kl": 0.0002, "rel_tol": 0.2},
    "sweep": {
        "alphas": [-1.0, 0.0, 1.0],
        "prompts": {"limit": 2},
        "sampling": {"max_new_tokens": 6},
        "leak_check_prompts": 1,
        "vector": {"calibrate": False, "coefficients": [-2.0, 2.0]},  # the tiny adapter is too weak to calibrate
    },
    "instruction": "Answer briefly.",
}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def demo_config(tmp_path, tiny_dir, **changes) -> DemoConfig:
    data = {**TINY_DEMO, "run_dir": str(tmp_path / "run"), "model": {"name": str(tiny_dir)}}
    for key, value in changes.items():
        section, _, leaf = key.partition(".")
        if leaf:
            data[section] = {**data.get(section, {}), leaf: value}
        else:
            data[key] = value
    return load_config(DemoConfig, data=data)


def stage_lines(out: str) -> dict[str, str]:
    lines = {}
    for line in out.splitlines():
        for stage in STAGES:
            if f"] {stage}:" in line:
                lines[stage] = line
    return lines


def test_demo_runs_every_stage_then_skips_them_and_reruns_only_downstream_of_a_change(tmp_path, tiny_dir, capsys):
    cfg = demo_config(tmp_path, tiny_dir)
    report, checks = run_demo(cfg)
    run = tmp_path / "run"
    book = json.loads((run / "stages.json").read_text())
    assert [s for s in STAGES if book[s]["status"] == "done"] == list(STAGES)
    for path in (
        "lint.json",
        "pairs/raw.jsonl",
        "pairs/curated.jsonl",
        "pairs/heldout.jsonl",
        "adapter/adapter_model.safetensors",
        "adapter/calibration.json",
        "eval/summary.json",
    ):
        assert (run / path).is_file(), path
    steering = json.loads((run / "adapter/steering.json").read_text())
    assert steering["calibrated_alpha"]["plus"] > 0 > steering["calibrated_alpha"]["minus"]
    html = report.read_text()
    assert "<h2>Checks</h2>" in html and "<h2>Pipeline</h2>" in html
    summary = json.loads((run / "eval/summary.json").read_text())
    assert [c["check"] for c in summary["pipeline"]["checks"]] == [c["check"] for c in checks]
    assert [s["stage"] for s in summary["pipeline"]["stages"]] == list(STAGES)
    raw_bytes = (run / "pairs/raw.jsonl").read_bytes()
    adapter_bytes = (run / "adapter/adapter_model.safetensors").read_bytes()
    capsys.readouterr()

    run_demo(cfg)  # nothing changed: every stage skipped, nothing rewritten
    lines = stage_lines(capsys.readouterr().out)
    assert all("skipped" in lines[s] for s in STAGES), lines
    assert (run / "adapter/adapter_model.safetensors").read_bytes() == adapter_bytes

    changed = demo_config(tmp_path, tiny_dir, **{"train.learning_rate": 0.02})
    run_demo(changed)  # a training setting changed: train and everything after it reruns
    lines = stage_lines(capsys.readouterr().out)
    assert all("skipped" in lines[s] for s in ("lint", "generate", "curate")), lines
    assert all("done" in lines[s] for s in ("train", "calibrate", "sweep")), lines
    assert (run / "pairs/raw.jsonl").read_bytes() == raw_bytes
    assert (run / "adapter/adapter_model.safetensors").read_bytes() != adapter_bytes

    run_demo(demo_config(tmp_path, tiny_dir, **{"train.learning_rate": 0.02, "rerun": ["sweep"]}))
    lines = stage_lines(capsys.readouterr().out)
    assert "skipped" in lines["calibrate"] and "done" in lines["sweep"], lines


def test_changed_generation_settings_set_the_raw_pairs_aside_instead_of_overwriting(tmp_path, tiny_dir, capsys):
    cfg = demo_config(tmp_path, tiny_dir, **{"sweep.kl": False})
    run_demo(cfg)
    raw_before = (tmp_path / "run/pairs/raw.jsonl").read_bytes()
    run_demo(demo_config(tmp_path, tiny_dir, **{"sweep.kl": False, "seed": 1}))
    out = capsys.readouterr().out
    stale = list((tmp_path / "run/stale").glob("generate-*/raw.jsonl"))
    assert len(stale) == 1 and stale[0].read_bytes() == raw_before
    assert "previous output kept in" in out
    assert (tmp_path / "run/pairs/raw.jsonl").read_bytes() != raw_before


def test_a_pair_that_fails_the_mirror_test_stops_the_demo_before_generating(tmp_path, tiny_dir, cli):
    config = tmp_path / "demo.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                **TINY_DEMO,
                "run_dir": str(tmp_path / "run"),
                "model": {"name": str(tiny_dir)},
                "pair": {"pos": "honest", "neg": "not honest"},
            }
        )
    )
    result = cli("demo", "--config", config)
    assert result.code != 0
    assert "mirror test" in result.err and "[negation]" in result.err and "Traceback" not in result.err
    assert result.err.count("\n") == 1, result.err  # one line
    assert not (tmp_path / "run/pairs").exists()


def test_demo_config_rejects_unknown_rerun_stage_and_bad_length_range():
    with pytest.raises(Exception, match="unknown stage"):
        load_config(DemoConfig, data={"rerun": ["trian"]})
    with pytest.raises(Exception, match="length_ratio"):
        load_config(DemoConfig, data={"checks": {"length_ratio": [1.2, 0.8]}})


def test_vector_arms_without_steering_vectors_stop_before_anything_is_written(tmp_path, tiny_dir, monkeypatch):
    import importlib.util

    from wsteer.errors import WsteerError

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "steering_vectors" else real(name, *a)
    )
    with pytest.raises(WsteerError, match="pip install --no-deps steering-vectors") as err:
        run_demo(demo_config(tmp_path, tiny_dir, vector_arms=True))
    assert "vector_arms=false" in str(err.value) and not (tmp_path / "run").exists()
