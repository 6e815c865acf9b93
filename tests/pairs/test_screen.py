"""The template × pair screen: tiny-model runs (fast), the statistics, and a real SmolLM2 run (slow)."""

import csv
import json
import math

import numpy as np
import pytest
from wsteer.pairs.screen import (
    ScoreWeights,
    ScreenConfig,
    combined_score,
    run_screen,
    score_with_ci,
    select_combinations,
)

from wsteer.config import load_config
from wsteer.errors import WsteerError
from wsteer.generation import SamplingConfig

PROMPTS = ["My friend's plan has a flaw. What should I say?", "A stranger asks me for money. What do I do?"]


def _pairs_file(tmp_path, pairs):
    path = tmp_path / "pairs.yaml"
    path.write_text("pairs:\n" + "".join(f"  - id: {i}\n    pos: {p}\n    neg: {n}\n" for i, p, n in pairs))
    return str(path)


def _config(tmp_path, **overrides):
    settings = dict(
        template_ids=["identity-adj", "acting-adj"],
        pair_ids=["honest"],
        prompts=PROMPTS,
        sampling=SamplingConfig(max_new_tokens=6, temperature=1.0),
        n_resamples=200,
        out_dir=str(tmp_path / "screen"),
    )
    settings.update(overrides)
    return ScreenConfig(**settings)


def _check_ci(row, name):
    assert row[f"{name}_lo"] <= row[name] + 1e-9 and row[name] <= row[f"{name}_hi"] + 1e-9, (name, row)


def test_screen_on_tiny_model_writes_sorted_table_with_cis(tmp_path, tiny):
    model, tokenizer = tiny
    result = run_screen(_config(tmp_path), model, tokenizer)
    assert [r["template"] for r in result.rows] != [] and len(result.rows) == 2
    scores = [r["score"] for r in result.rows]
    assert scores == sorted(scores, reverse=True)
    for row in result.rows:
        assert row["n"] == len(PROMPTS) and row["pair"] == "honest" and row["lint"] == "pass"
        for name in ("on_axis", "length_ratio", "refusal_diff", "echo_rate", "hedging_diff", "score"):
            _check_ci(row, name)
    with open(result.table) as handle:
        table = list(csv.DictReader(handle))
    assert [r["template"] for r in table] == [r["template"] for r in result.rows]
    markdown = result.markdown.read_text()
    assert "| 1 | " in markdown and "score = ΔPLR" in markdown and "[" in markdown
    manifest = json.loads(result.manifest.read_text())
    assert manifest["stage"] == "templates.screen" and manifest["inputs"]["pairs"]["sha256"]
    assert (result.manifest.parent / "config.yaml").exists()

    generations = [json.loads(line) for line in result.generations.read_text().splitlines()]
    assert len(generations) == 2 * len(PROMPTS)
    # the table's on-axis value is the mean of the per-answer PLR differences it recorded
    for row in result.rows:
        diffs = [g["plr_pos"] - g["plr_neg"] for g in generations if g["template"] == row["template"]]
        assert row["on_axis"] == pytest.approx(np.mean(diffs), abs=1e-9)
    # the same prompt gets the same seed under every template (common random numbers across the screen)
    seeds = {(g["prompt"], g["template"]): g["seed"] for g in generations}
    assert seeds[(PROMPTS[0], "identity-adj")] == seeds[(PROMPTS[0], "acting-adj")]
    assert seeds[(PROMPTS[0], "identity-adj")] != seeds[(PROMPTS[1], "identity-adj")]


def test_pos_and_neg_share_the_seed_so_a_null_pair_has_no_contrast(tmp_path, tiny):
    """pos == neg with the same seed must give identical answers: every difference is exactly zero."""
    model, tokenizer = tiny
    pairs_file = _pairs_file(tmp_path, [("same", "honest", "honest")])
    result = run_screen(
        _config(tmp_path, pairs_file=pairs_file, pair_ids=["same"], template_ids=["acting-adj"]), model, tokenizer
    )
    (row,) = result.rows
    generations = [json.loads(line) for line in result.generations.read_text().splitlines()]
    assert all(g["pos"] == g["neg"] for g in generations)
    assert row["on_axis"] == 0 and row["length_ratio"] == 1 and row["refusal_diff"] == 0
    assert row["hedging_diff"] == 0 and row["on_axis_lo"] == row["on_axis_hi"] == 0


def test_screen_cli_on_a_saved_tiny_model(cli, tmp_path):
    from wsteer.testing import save_tiny_model

    model_dir = save_tiny_model(tmp_path / "tiny")
    out = tmp_path / "out"
    result = cli(
        "templates",
        "screen",
        "--config",
        "configs/screen.yaml",
        f"model.name={model_dir}",
        "template_ids=[identity-clause]",
        "pair_ids=[care-over-orders]",
        "sampling.max_new_tokens=4",
        "n_resamples=100",
        "output_format=jsonl",
        f"out_dir={out}",
        f"prompts={json.dumps(PROMPTS)}",
    )
    assert result.code == 0, result
    assert (out / "screen.jsonl").exists() and (out / "screen.md").exists()
    assert "identity-clause" in result.out and str(out / "screen.md") in result.out
    (row,) = [json.loads(line) for line in (out / "screen.jsonl").read_text().splitlines()]
    assert row["pair"] == "care-over-orders" and row["form"] == "clause"


def test_combinations_respect_forms(tmp_path):
    combos, skipped = select_combinations(
        _config(tmp_path, template_ids=["acting-adj", "acting-clause"], pair_ids=["honest", "care-over-orders"])
    )
    assert {(t.id, p.id) for t, p in combos} == {("acting-adj", "honest"), ("acting-clause", "care-over-orders")}
    assert set(skipped) == {("acting-adj", "care-over-orders"), ("acting-clause", "honest")}
    with pytest.raises(WsteerError, match="no template fits"):
        select_combinations(_config(tmp_path, template_ids=["acting-clause"], pair_ids=["honest"]))
    with pytest.raises(WsteerError, match="no pair with id 'nope'"):
        select_combinations(_config(tmp_path, pair_ids=["nope"]))


def test_score_formula_rewards_on_axis_and_penalises_off_axis():
    w = ScoreWeights(length=0.5, refusal=1.0, echo=0.5, hedging=0.02)
    assert combined_score(0.3, 0, 0, 0, 0, w) == pytest.approx(0.3)
    # a 2x length ratio (1 bit) either way costs 0.5; refusal, echo and hedging differences cost too
    assert combined_score(0.3, 1.0, 0, 0, 0, w) == pytest.approx(-0.2)
    assert combined_score(0.3, -1.0, 0, 0, 0, w) == pytest.approx(-0.2)
    assert combined_score(0.3, 0, -0.5, 0.2, 10.0, w) == pytest.approx(0.3 - 0.5 - 0.1 - 0.2)


def test_score_ci_resamples_rows_jointly():
    rng = np.random.default_rng(0)
    metrics = {
        "on_axis": rng.normal(0.2, 0.1, 40),
        "length_log2": rng.normal(0.0, 0.2, 40),
        "refusal_diff": np.zeros(40),
        "echo_rate": np.zeros(40),
        "hedging_diff": np.zeros(40),
    }
    metrics["on_axis"][3] = math.nan  # a row with an empty answer is dropped
    summary = score_with_ci(metrics, ScoreWeights(), 0.95, 500, seed=0)
    assert summary["n"] == 39 and summary["lo"] < summary["mean"] < summary["hi"]
    constant = {k: np.full(5, 0.1) for k in metrics}
    same = score_with_ci(constant, ScoreWeights(), 0.95, 500, seed=0)
    assert same["lo"] == same["mean"] == same["hi"]


def test_screen_config_file_loads():
    cfg = load_config(ScreenConfig, "configs/screen.yaml")
    assert cfg.model.name == "smollm2-135m" and cfg.template_ids and cfg.weights.length == 0.5


@pytest.mark.slow
def test_screen_on_smollm2_writes_table_with_cis(tmp_path, smollm2):
    model, tokenizer = smollm2
    cfg = _config(
        tmp_path,
        template_ids=["identity-adj", "acting-adj"],
        pair_ids=["honest"],
        sampling=SamplingConfig(max_new_tokens=12, temperature=0.7),
        n_resamples=500,
    )
    result = run_screen(cfg, model, tokenizer)
    assert len(result.rows) == 2
    for row in result.rows:
        assert row["n"] == 2 and math.isfinite(row["on_axis"]) and math.isfinite(row["score"])
        for name in ("on_axis", "length_ratio", "score"):
            _check_ci(row, name)
    generations = [json.loads(line) for line in result.generations.read_text().splitlines()]
    assert all(g["pos"] and g["neg"] for g in generations)
    markdown = result.markdown.read_text()
    assert markdown.count("| honest |") == 2 and "## Templates across pairs" in markdown
