"""The real SmolLM2 through the whole pipeline (``wsteer demo``) on a handful of prompts: every stage runs on the
embedded model and the report is written from real generations."""

import json

import pytest

from wsteer.config import load_config
from wsteer.pipeline.demo import STAGES, DemoConfig, run_demo

SMALL_DEMO = {
    "heldout_prompts": 4,
    "vector_arms": False,  # the vector arms on SmolLM2: tests/eval/test_vector.py
    "generate": {"prompts": {"limit": 12}, "sampling": {"max_new_tokens": 48}},
    "curate": {"force": True},  # a handful of pairs: keep what survives even if most needed rewriting
    "train": {"epochs": 2, "progress": False},
    "calibrate": {"max_prompts": 2, "max_new_tokens": 8},
    "sweep": {
        "alphas": [-1.0, 0.0, 1.0],
        "prompts": {"limit": 4},
        "sampling": {"max_new_tokens": 24},
        "leak_check_prompts": 1,
    },
}


@pytest.mark.slow
def test_demo_on_smollm2_runs_every_stage_and_reports(tmp_path):
    cfg = load_config(DemoConfig, data={**SMALL_DEMO, "run_dir": str(tmp_path / "run")})
    report, checks = run_demo(cfg)
    run = tmp_path / "run"
    book = json.loads((run / "stages.json").read_text())
    assert all(book[s]["status"] == "done" for s in STAGES), book
    raw = [json.loads(line) for line in (run / "pairs/raw.jsonl").read_text().splitlines()]
    assert len(raw) == 12
    assert not any("honest" in (r["cho"] + r["rej"]).lower() for r in raw)  # persona words blocked
    curated = [json.loads(line) for line in (run / "pairs/curated.jsonl").read_text().splitlines()]
    assert curated and all(r["cho"] != r["rej"] for r in curated)  # raw pairs may coincide; curation drops them
    steering = json.loads((run / "adapter/steering.json").read_text())
    assert steering["base_model"] == "smollm2-135m" and steering["pos"] == "honest"
    assert steering["calibrated_alpha"]["plus"] > 0 > steering["calibrated_alpha"]["minus"]
    summary = json.loads((run / "eval/summary.json").read_text())
    arms = {a["name"]: a for a in summary["arms"]}
    # α = 0 and the no-persona baseline answer with the same seeds on the same base: the same texts and scores.
    assert arms["α=+0"]["metrics"]["plr"] == arms["prompt:none"]["metrics"]["plr"]
    assert arms["α=+1"]["metrics"]["kl"]["mean"] > 0 and arms["α=+0"]["metrics"]["kl"]["mean"] < 1e-6
    html = report.read_text()
    assert html.count("data:image/png;base64,") >= 2 and "<h2>Checks</h2>" in html
    assert len(checks) == 8  # ρ, beyond prompting and coherence per pole, cap, length, echo (tests/test_demo_checks.py)
