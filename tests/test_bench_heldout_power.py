"""bench/heldout_power.py reads the demo's checks on one sample of each prompt, or on several pooled: two samples of
one prompt are two answers, never one overwriting the other (hand-made rows; no model)."""

from __future__ import annotations

import pytest

from bench.heldout_power import arm_table


def answer(prompt_id: str, sample: int, alpha: float, distinct_2: float, tokens: int = 50) -> dict:
    return {
        "kind": "adapter",
        "filtered": True,
        "alpha": alpha,
        "prompt_id": prompt_id,
        "sample": sample,
        "distinct_2": distinct_2,
        "perplexity": 4.0,
        "tokens": tokens,
        "truncated": tokens >= 160,
    }


@pytest.fixture
def rows() -> list[dict]:
    """Two prompts answered twice; at α = −0.5 the second sample of prompt b loops and runs to the cap."""
    out = []
    for sample in (0, 1):
        for prompt in ("a", "b"):
            out.append(answer(prompt, sample, 0.0, 0.95))
            loops = sample == 1 and prompt == "b"
            out.append(answer(prompt, sample, -0.5, 0.55 if loops else 0.95, tokens=160 if loops else 50))
    return out


def test_each_sample_is_read_alone_and_pooled(rows):
    (first,) = arm_table(rows, ["a", "b"], [0])
    (second,) = arm_table(rows, ["a", "b"], [1])
    (pooled,) = arm_table(rows, ["a", "b"], [0, 1])
    assert first["distinct2_drop"] == pytest.approx(0.0) and first["truncated"] == 0.0
    assert second["distinct2_drop"] == pytest.approx(-0.2) and second["truncated"] == 0.5
    assert second["length_ratio"] == pytest.approx(210 / 100)
    assert pooled["distinct2_drop"] == pytest.approx(-0.1) and pooled["truncated"] == 0.25


def test_the_default_is_sample_zero_as_the_demo_reads_it(rows):
    assert arm_table(rows, ["a", "b"]) == arm_table(rows, ["a", "b"], [0])
