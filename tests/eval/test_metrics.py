import math

import numpy as np
import pytest
from wsteer.eval.metrics import dose_response, pooled_within_sd, standardised_slope, summarize_arms

ALPHAS = [-2.0, -1.0, 0.0, 1.0, 2.0]


def synthetic_rows(trait_per_alpha, length_per_alpha, n=30, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for a in ALPHAS:
        for _ in range(n):
            rows.append(
                {
                    "arm": f"α={a:+g}",
                    "alpha": a,
                    "plr": trait_per_alpha * a + rng.normal(0, 1),
                    "tokens": 50 + length_per_alpha * a + rng.normal(0, 1),
                    "refusal": 0.0,
                }
            )
    return rows


def test_summarize_arms_means_and_cis():
    rows = [{"arm": "a", "x": v} for v in (1.0, 2.0, 3.0)] + [{"arm": "b", "x": 5.0}, {"arm": "b", "x": None}]
    arms = summarize_arms(rows, [{"name": "a"}, {"name": "b"}, {"name": "c"}], ["x"])
    assert arms[0]["metrics"]["x"]["mean"] == pytest.approx(2.0)
    assert arms[0]["metrics"]["x"]["lo"] < 2.0 < arms[0]["metrics"]["x"]["hi"]
    assert arms[1]["metrics"]["x"]["n"] == 1 and arms[2]["metrics"] == {}


def test_standardised_slope_is_slope_over_within_arm_sd():
    alphas = [0, 0, 1, 1]
    values = [0.0, 2.0, 3.0, 5.0]  # within-arm SD = sqrt(2), slope = 3
    info = standardised_slope(alphas, values)
    assert info["slope"] == pytest.approx(3.0) and info["std_slope"] == pytest.approx(3.0 / math.sqrt(2))
    assert pooled_within_sd([[1.0], [2.0]]) != pooled_within_sd([[1.0], [2.0]])  # NaN: no group of two
    assert standardised_slope([0, 1], [0.0, 1.0])["std_slope"] == math.inf  # no spread, but it moved


def test_dose_response_flags_a_length_axis():
    clean = dose_response(synthetic_rows(trait_per_alpha=1.0, length_per_alpha=0.0))
    assert clean["spearman"]["rho"] > 0.7 and clean["flags"] == []
    assert clean["slopes"]["refusal"]["std_slope"] == 0.0
    confounded = dose_response(synthetic_rows(trait_per_alpha=0.2, length_per_alpha=3.0))
    assert len(confounded["flags"]) == 1 and confounded["flags"][0].startswith("tokens moves more than the trait")


def test_metric_registry_covers_what_the_scorers_write_and_derives_every_list():
    from wsteer.eval.metrics import (
        AB_METRICS,
        ALL_METRICS,
        METRICS,
        NUISANCE_METRICS,
        TABLE_METRICS,
        TRAIT_METRIC,
    )

    from wsteer.textstats import text_metrics

    names = [m.name for m in METRICS]
    assert len(names) == len(set(names)) and all(m.label and m.higher for m in METRICS)
    # every text metric the scorer writes is registered as one, and nothing else claims to be one
    assert {m.name for m in METRICS if m.source == "text"} == set(text_metrics("Some text.", ["honest"]))
    assert TRAIT_METRIC == "plr" and {"perplexity", "kl", "tokens"} <= set(NUISANCE_METRICS)
    assert set(AB_METRICS) | set(TABLE_METRICS) | set(NUISANCE_METRICS) <= set(ALL_METRICS) == set(names)
    assert "margin" not in AB_METRICS and "margin" in TABLE_METRICS  # per held-out pair, not per answer
    assert [m for m in ALL_METRICS if m in NUISANCE_METRICS] == list(NUISANCE_METRICS)  # one order everywhere
