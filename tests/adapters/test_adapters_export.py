"""Export and merge at the calibrated α: stock peft at its default scaling reproduces wsteer's steering at α."""

import json

import pytest
import torch
from adapter_helpers import (
    load_checkpoint,
    logits,
    make_adapter,
    one_line_error,
    read_json,
    text_batch,
    write_steering,
)
from peft import PeftModel
from safetensors.torch import load_file
from wsteer.adapters.export import ExportConfig, export_adapter, resolve_alpha
from wsteer.adapters.loading import load_steerable

from wsteer.errors import WsteerError
from wsteer.lora import scaled_adapter
from wsteer.records import read_steering_info
from wsteer.testing import save_tiny_model

ALPHA_PLUS, ALPHA_MINUS = 1.7, -2.3
CALIBRATED = {"plus": ALPHA_PLUS, "minus": ALPHA_MINUS, "target_kl": 0.5, "quantile": 0.95, "statistic": "p95 KL"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tokenizer):
    """(root, base_dir, calibrated adapter, uncalibrated adapter)."""
    root = tmp_path_factory.mktemp("export")
    base_dir = save_tiny_model(root / "base", seed=0)
    base = load_checkpoint(base_dir)
    make_adapter(base, root / "adapter", seed=1, scale=2.0)
    write_steering(root / "adapter", base_dir, calibrated_alpha=CALIBRATED)
    make_adapter(base, root / "uncalibrated", seed=2, scale=2.0)
    write_steering(root / "uncalibrated", base_dir)
    return root, base_dir, root / "adapter", root / "uncalibrated"


def wsteer_logits(adapter, batch, alpha):
    """Logits of wsteer steering the adapter at ``alpha`` (runtime scaling of the delta)."""
    model, _ = load_steerable(adapter)
    with scaled_adapter(model, alpha):
        return logits(model, batch)


def stock_peft_logits(base_dir, adapter, batch):
    """Logits of plain peft loading ``adapter`` at its default scaling (what vLLM / lm-eval would run)."""
    model = PeftModel.from_pretrained(load_checkpoint(base_dir), str(adapter)).eval()
    return logits(model, batch)


@pytest.mark.parametrize(("requested", "alpha"), [("calibrated", ALPHA_PLUS), ("calibrated-", ALPHA_MINUS)])
def test_export_at_the_calibrated_alpha_matches_wsteer_steering(setup, tokenizer, tmp_path, requested, alpha):
    _, base_dir, adapter, _ = setup
    out, used = export_adapter(ExportConfig(adapter=str(adapter), alpha=requested, out=str(tmp_path / "export")))
    assert used == alpha
    batch = text_batch(tokenizer)
    exported = stock_peft_logits(base_dir, out, batch)
    steered = wsteer_logits(adapter, batch, alpha)
    assert torch.allclose(exported, steered, atol=1e-4)
    # The check can fail: the unexported adapter runs at α = +1, and a lost sign (e.g. both factors negated) at -α.
    assert not torch.allclose(stock_peft_logits(base_dir, adapter, batch), steered, atol=1e-2)
    assert not torch.allclose(wsteer_logits(adapter, batch, -alpha), steered, atol=1e-2)


def test_export_scales_lora_b_only_and_keeps_peft_scaling(setup, tmp_path):
    _, _, adapter, _ = setup
    out, _ = export_adapter(ExportConfig(adapter=str(adapter), alpha=-0.5, out=str(tmp_path / "export")))
    source, folded = load_file(adapter / "adapter_model.safetensors"), load_file(out / "adapter_model.safetensors")
    assert source.keys() == folded.keys()
    for key, tensor in source.items():
        expected = tensor * -0.5 if ".lora_B." in key else tensor
        assert torch.equal(folded[key], expected), key
    before, after = read_json(adapter / "adapter_config.json"), read_json(out / "adapter_config.json")
    for key in ("r", "lora_alpha", "use_rslora", "target_modules", "base_model_name_or_path"):
        assert after[key] == before[key], key
    info = read_steering_info(out)
    assert info.calibrated_alpha is None  # α is in the weights now: no calibrated α to apply on top
    assert info.provenance["export"]["alpha"] == -0.5
    assert info.provenance["export"]["source_calibrated_alpha"] == CALIBRATED
    card = (out / "README.md").read_text()
    assert "α = -0.5 (-0.5) is folded into `lora_B`" in card and "Do not scale it again" in card


def test_export_verb(cli, setup, tmp_path):
    _, _, adapter, _ = setup
    out = tmp_path / "plus"
    result = cli("adapters", "export", adapter, "alpha=calibrated", f"out={out}")
    assert result.code == 0, result
    assert str(out) in result.out and "+1.7" in result.out
    assert read_json(out / "steering.json")["provenance"]["export"]["alpha"] == ALPHA_PLUS
    line = one_line_error(cli("adapters", "export", adapter, "alpha=calibrated", f"out={out}"))
    assert "already exists" in line
    line = one_line_error(cli("adapters", "export", adapter, "alpha=calibrate", f"out={tmp_path / 'x'}"))
    assert "alpha" in line and "calibrated" in line
    assert not (tmp_path / "x").exists()


def test_missing_calibration_is_a_clear_error(cli, setup, tmp_path):
    _, _, _, uncalibrated = setup
    with pytest.raises(WsteerError, match="wsteer adapters calibrate"):
        resolve_alpha("calibrated", read_steering_info(uncalibrated))
    for verb in (
        ("adapters", "export", uncalibrated, "alpha=calibrated-", f"out={tmp_path / 'e'}"),
        ("adapters", "merge", uncalibrated, "alpha=calibrated", f"out={tmp_path / 'm'}"),
    ):
        line = one_line_error(cli(*verb))
        assert "no calibrated α" in line and "wsteer adapters calibrate" in line
    assert not (tmp_path / "e").exists() and not (tmp_path / "m").exists()


def test_resolve_alpha():
    assert resolve_alpha("-1.25", None) == (-1.25, "-1.25")
    assert resolve_alpha(2, None) == (2.0, "2")
    with pytest.raises(WsteerError, match="finite"):
        resolve_alpha("nan", None)
    with pytest.raises(WsteerError, match=r"no steering\.json"):
        resolve_alpha("calibrated", None)


def test_merge_accepts_the_calibrated_alpha(cli, setup, tmp_path):
    _, _, adapter, _ = setup
    by_name = cli("adapters", "merge", adapter, "alpha=calibrated-", f"out={tmp_path / 'named'}")
    assert by_name.code == 0, by_name
    by_value = cli("adapters", "merge", adapter, f"alpha={ALPHA_MINUS}", f"out={tmp_path / 'value'}")
    assert by_value.code == 0, by_value
    merge = read_json(tmp_path / "named" / "steering.json")["provenance"]["merge"]
    assert merge["alpha"] == ALPHA_MINUS
    named = load_file(tmp_path / "named" / "model.safetensors")
    value = load_file(tmp_path / "value" / "model.safetensors")
    assert named.keys() == value.keys() and all(torch.equal(named[k], value[k]) for k in named)
    assert json.loads((tmp_path / "named" / "config.json").read_text()) == json.loads(
        (tmp_path / "value" / "config.json").read_text()
    )
