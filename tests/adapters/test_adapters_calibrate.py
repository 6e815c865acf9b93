"""Calibration: the KL statistic, the search recovering a planted α, and what gets written."""

import json

import pytest
from adapter_helpers import (
    load_checkpoint,
    make_adapter,
    read_json,
    write_steering,
)
from wsteer.adapters.calibrate import CalibrateConfig, KLMeter, calibrate, load_prompts, measure, search_alphas
from wsteer.adapters.loading import load_steerable

from wsteer.errors import DataError, WsteerError
from wsteer.records import read_steering_info
from wsteer.testing import save_tiny_model

PROMPTS = [
    "Why is the sky blue?",
    "Give me three tips for a job interview.",
    "Write two sentences about the ocean.",
    "How do I start learning to play the guitar?",
    "Is it ever acceptable to break a promise?",
    "Explain how a refrigerator keeps food cold.",
]
TOKENS = 12


@pytest.fixture(scope="module")
def steerable(tmp_path_factory, tokenizer):
    """(model, tokenizer, adapter_dir): a tiny base with peaked next-token distributions and a moderate adapter.

    initializer_range 0.3 makes the random model's predictions confident (perplexity ~10², not ~vocab size), so
    KL grows smoothly with α instead of saturating at once.
    """
    root = tmp_path_factory.mktemp("calibrate")
    base_dir = save_tiny_model(root / "base", seed=0, initializer_range=0.3)
    make_adapter(load_checkpoint(base_dir), root / "adapter", seed=1, scale=0.25)
    write_steering(root / "adapter", base_dir)
    model, tok = load_steerable(root / "adapter")
    return model, tok, root / "adapter"


def test_the_statistic_is_zero_at_alpha_zero_and_grows_with_alpha(steerable):
    model, tok, _ = steerable
    for tokens in ("base", "steered"):
        stats = measure(model, tok, PROMPTS, [0.0, 0.5, 2.0, -2.0], TOKENS, tokens=tokens)
        assert stats[0.0].kl_quantile == 0.0 and stats[0.0].kl_mean == 0.0
        assert stats[0.0].positions >= len(PROMPTS) * 1
        assert 0 < stats[0.5].kl_quantile < stats[2.0].kl_quantile, tokens
        assert stats[-2.0].kl_quantile > 0
    base_run = measure(model, tok, PROMPTS, [1.0], TOKENS, tokens="base")[1.0]
    steered_run = measure(model, tok, PROMPTS, [1.0], TOKENS, tokens="steered")[1.0]
    assert base_run.kl_quantile != steered_run.kl_quantile  # different tokens are scored


def test_recovers_a_planted_alpha_within_5_percent(steerable):
    model, tok, _ = steerable
    planted = 1.7
    meter = KLMeter(model, tok, PROMPTS, TOKENS)
    target = meter([planted])[planted].kl_quantile
    cfg = CalibrateConfig(target_kl=target, max_new_tokens=TOKENS, prompts=PROMPTS)
    result = search_alphas(model, tok, PROMPTS, cfg, progress=False)
    assert abs(result.alpha_plus / planted - 1) < 0.05, result.alpha_plus
    assert abs(result.plus.kl_quantile / target - 1) < 0.05
    # the negative side: the same target is crossed within 5% of the α⁻ found
    minus = result.alpha_minus
    around = meter([0.95 * minus, 1.05 * minus])
    assert minus < 0 and around[0.95 * minus].kl_quantile < target < around[1.05 * minus].kl_quantile
    assert len(result.trace) < 30
    # the fluency check scores what steering writes: steered answers read worse to the base than its own
    assert result.plus_outputs.base_perplexity > result.base_outputs.base_perplexity
    assert result.plus_outputs.samples != result.base_outputs.samples


def test_unreachable_target_is_a_clear_error(steerable):
    model, tok, _ = steerable
    cfg = CalibrateConfig(target_kl=1e6, max_new_tokens=4, prompts=PROMPTS[:2], max_alpha=4.0)
    with pytest.raises(WsteerError, match="below the target"):
        search_alphas(model, tok, PROMPTS[:2], cfg, progress=False)


def test_calibrate_writes_steering_json_and_report(steerable, tmp_path):
    _, _, adapter_dir = steerable
    prompts_file = tmp_path / "prompts.jsonl"
    prompts_file.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS[:3]))
    cfg = CalibrateConfig(
        adapter=str(adapter_dir),
        prompts_file=str(prompts_file),
        max_new_tokens=8,
        target_kl=0.5,
        report=str(tmp_path / "report.json"),
    )
    result, report_path = calibrate(cfg, progress=False)
    calibrated = read_steering_info(adapter_dir).calibrated_alpha
    assert calibrated["plus"] == result.alpha_plus > 0 > calibrated["minus"] == result.alpha_minus
    assert calibrated["target_kl"] == 0.5 and calibrated["n_prompts"] == 3 and calibrated["tokens"] == "base"
    assert calibrated["base_perplexity_plus"] > 0 and "per-token KL" in calibrated["statistic"]
    report = read_json(report_path)
    assert report["calibrated_alpha"] == calibrated and report["manifest"]["stage"] == "adapters.calibrate"
    assert read_steering_info(adapter_dir).pos == "honest"  # the rest of steering.json is untouched


def test_prompt_files(tmp_path):
    text = tmp_path / "p.txt"
    text.write_text("first\n\n  second  \n")
    assert load_prompts(CalibrateConfig(prompts_file=str(text))) == ["first", "second"]
    assert load_prompts(CalibrateConfig(max_prompts=2)) == CalibrateConfig().prompts[:2]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"text": "no prompt"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2"):
        load_prompts(CalibrateConfig(prompts_file=str(bad)))
    with pytest.raises(DataError, match="not found"):
        load_prompts(CalibrateConfig(prompts_file=str(tmp_path / "missing.txt")))


def test_calibrate_a_plain_peft_adapter_writes_only_its_report(steerable, tmp_path):
    import shutil

    _, _, adapter_dir = steerable
    plain = tmp_path / "plain"
    shutil.copytree(adapter_dir, plain)
    (plain / "steering.json").unlink()
    (plain / "calibration.json").unlink(missing_ok=True)
    result, report = calibrate(
        CalibrateConfig(adapter=str(plain), max_prompts=2, max_new_tokens=4, target_kl=0.3), progress=False
    )
    assert report == plain / "calibration.json" and not (plain / "steering.json").exists()
    assert read_json(report)["calibrated_alpha"]["plus"] == result.alpha_plus > 0
