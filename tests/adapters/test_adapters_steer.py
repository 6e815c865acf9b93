"""Runtime steering: any real α, base exactly at 0, restored on exit and on errors; base checks on load."""

import copy
import json
import shutil

import pytest
import torch
from adapter_helpers import (
    load_checkpoint,
    logits,
    make_adapter,
    text_batch,
    write_steering,
)
from peft import PeftModel
from wsteer.adapters.loading import attach_adapter, load_steerable
from wsteer.adapters.steer import steer

from wsteer.errors import ModelLoadError, WsteerError
from wsteer.lora import adapter_deltas, lora_layers, read_adapter
from wsteer.testing import save_tiny_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tokenizer):
    """(base_dir, adapter_dir, other_adapter_dir)."""
    root = tmp_path_factory.mktemp("steer")
    base_dir = save_tiny_model(root / "base", seed=0)
    base = load_checkpoint(base_dir)
    make_adapter(base, root / "a", seed=1)
    write_steering(root / "a", base_dir)
    make_adapter(base, root / "b", seed=2, targets=["k_proj", "up_proj"])
    return base_dir, root / "a", root / "b"


def reference_logits(base_dir, adapter_dir, alpha, batch):
    """Base weights plus alpha * ΔW written in directly: the arithmetic steering must reproduce."""
    model = load_checkpoint(base_dir)
    with torch.no_grad():
        for name, delta in adapter_deltas(read_adapter(adapter_dir)).items():
            model.get_submodule(name).weight += alpha * delta
    return logits(model, batch)


def test_steer_equals_base_plus_alpha_delta_for_any_real_alpha(setup, tokenizer):
    base_dir, adapter_dir, _ = setup
    model, _ = load_steerable(adapter_dir)
    batch = text_batch(tokenizer)
    for alpha in (-2.5, -1.0, -0.3, 0.7, 3.0):
        with steer(model, "default", alpha) as steered:
            assert steered is model
            assert torch.allclose(
                logits(model, batch), reference_logits(base_dir, adapter_dir, alpha, batch), atol=1e-4
            ), alpha
    layer = lora_layers(model)[0][1]  # a negative α negates the delta: each LoRA layer's change flips sign
    x = torch.randn(3, layer.in_features)
    with torch.no_grad():
        base_out = layer.base_layer(x)
        with steer(model, None, -1.3):
            minus = layer(x) - base_out
        with steer(model, None, 1.3):
            plus = layer(x) - base_out
    assert plus.abs().max() > 0.1 and torch.allclose(minus, -plus, atol=1e-6)


def test_alpha_zero_is_the_base_exactly_and_scaling_restores_even_on_error(setup, tokenizer):
    base_dir, adapter_dir, _ = setup
    model, _ = load_steerable(adapter_dir)
    batch = text_batch(tokenizer)
    with steer(model, None, 0.0):
        assert torch.equal(logits(model, batch), logits(load_checkpoint(base_dir), batch))
    before = logits(model, batch)
    scalings = [dict(layer.scaling) for _, layer in lora_layers(model)]
    with pytest.raises(RuntimeError, match="boom"):
        with steer(model, None, 2.0):
            raise RuntimeError("boom")
    assert [dict(layer.scaling) for _, layer in lora_layers(model)] == scalings
    assert torch.equal(logits(model, batch), before)
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(WsteerError, match="finite"):
            with steer(model, None, bad):
                pass


def test_steer_by_path_loads_for_the_block_and_leaves_the_model_as_it_was(setup, tokenizer):
    base_dir, adapter_dir, _ = setup
    base = load_checkpoint(base_dir)
    base.wsteer_source = {"name": str(base_dir), "path": str(base_dir)}
    batch = text_batch(tokenizer)
    before = logits(base, batch)
    names = [n for n, _ in base.named_modules()]
    with steer(base, adapter_dir, 1.5) as steered:
        assert isinstance(steered, PeftModel)
        assert torch.allclose(logits(steered, batch), reference_logits(base_dir, adapter_dir, 1.5, batch), atol=1e-4)
    assert not isinstance(base, PeftModel) and not lora_layers(base)
    assert [n for n, _ in base.named_modules()] == names
    assert torch.equal(logits(base, batch), before)
    with pytest.raises(KeyError):
        with steer(base, adapter_dir, -1.0):
            raise KeyError("boom")
    assert not lora_layers(base) and torch.equal(logits(base, batch), before)


def test_steer_selects_one_of_several_loaded_adapters_and_restores_the_active_one(setup, tokenizer):
    base_dir, adapter_a, adapter_b = setup
    model, _ = load_steerable(adapter_a)
    attach_adapter(model, adapter_b, adapter_name="b")
    batch = text_batch(tokenizer)
    with steer(model, "b", 2.0):
        assert torch.allclose(logits(model, batch), reference_logits(base_dir, adapter_b, 2.0, batch), atol=1e-4)
    assert model.active_adapter == "default"
    assert not any(p.requires_grad for _, p in model.named_parameters())
    with steer(model, adapter_b, -1.0):  # by path on a peft model: a temporary adapter, deleted afterwards
        assert torch.allclose(logits(model, batch), reference_logits(base_dir, adapter_b, -1.0, batch), atol=1e-4)
    assert sorted(model.peft_config) == ["b", "default"] and model.active_adapter == "default"
    with pytest.raises(WsteerError, match="neither a loaded adapter"):
        with steer(model, "missing", 1.0):
            pass


def test_wrong_base_and_wrong_shapes_are_refused_on_load(setup, tmp_path):
    base_dir, adapter_dir, plain_adapter = setup
    other = save_tiny_model(tmp_path / "other", seed=9)  # same shapes, other weights
    with pytest.raises(ModelLoadError, match="wrong base"):
        load_steerable(adapter_dir, base=str(other))
    wide = save_tiny_model(tmp_path / "wide", seed=0, hidden_size=48, intermediate_size=96)
    with pytest.raises(ModelLoadError, match="shape mismatch"):
        load_steerable(plain_adapter, base=str(wide))  # no steering.json: the shape check catches it
    model = load_checkpoint(wide)
    with pytest.raises(ModelLoadError, match="shape mismatch"):
        attach_adapter(copy.deepcopy(model), plain_adapter)
    anonymous = tmp_path / "anonymous"
    shutil.copytree(plain_adapter, anonymous)
    config = json.loads((anonymous / "adapter_config.json").read_text())
    (anonymous / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": None}))
    with pytest.raises(ModelLoadError, match="does not say which base"):
        load_steerable(anonymous)
    assert load_steerable(anonymous, base=str(base_dir))[0] is not None
