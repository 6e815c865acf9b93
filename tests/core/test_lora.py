"""wsteer.lora against peft's own code paths."""

import copy

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model

from wsteer.errors import WsteerError
from wsteer.lora import (
    adapter_deltas,
    combine_adapters,
    per_row_adapter_scale,
    read_adapter,
    scaled_adapter,
    write_adapter,
)

TARGETS = ["q_proj", "v_proj", "down_proj"]


def make_adapter(base, path, seed, r=4, alpha=8, **kwargs):
    """A LoRA adapter with random (non-zero) A and B, saved to ``path``; returns the peft model."""
    torch.manual_seed(seed)
    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=TARGETS, init_lora_weights=False, **kwargs)
    model = get_peft_model(copy.deepcopy(base), config)
    with torch.no_grad():  # make the delta large enough to matter on a tiny model
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.mul_(20)
    model.save_pretrained(path)
    return model.eval()


@pytest.fixture
def batch(tokenizer):
    texts = ["Hello there, how are you?", "Tell me about the sea.", "Two", "A much longer sentence to pad."]
    tokenizer.padding_side = "left"
    return tokenizer(texts, return_tensors="pt", padding=True)


def logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def test_scaled_adapter_matches_peft_set_scale_and_merge(tiny, batch, tmp_path):
    base, _ = tiny
    model = make_adapter(base, tmp_path / "a", seed=1)
    for alpha in (-2.0, -1.0, 0.5, 2.0):
        with scaled_adapter(model, alpha):
            ours = logits(model, batch)
        reference = copy.deepcopy(model)
        for _, module in reference.named_modules():
            if hasattr(module, "set_scale"):
                module.set_scale("default", alpha)
        assert torch.allclose(ours, logits(reference, batch), atol=1e-5)
        merged = reference.merge_and_unload()
        assert torch.allclose(ours, logits(merged, batch), atol=1e-4)
    unscaled = logits(model, batch)
    with scaled_adapter(model, 1.0):
        assert torch.equal(logits(model, batch), unscaled)


def test_alpha_zero_is_exactly_base_and_scalings_restore_on_error(tiny, batch, tmp_path):
    base, _ = tiny
    expected = logits(base, batch)
    model = make_adapter(base, tmp_path / "a", seed=1)
    with scaled_adapter(model, 0.0):
        assert torch.equal(logits(model, batch), expected)
    before = logits(model, batch)
    with pytest.raises(KeyError):
        with scaled_adapter(model, 3.0):
            raise KeyError("boom")
    assert torch.equal(logits(model, batch), before)
    with pytest.raises(WsteerError, match="finite"):
        with scaled_adapter(model, float("nan")):
            pass


def test_per_row_scale_equals_each_alpha_alone(tiny, batch, tmp_path):
    base, _ = tiny
    model = make_adapter(base, tmp_path / "a", seed=2)
    alphas = [-2.0, 0.0, 1.0, 2.0]
    with per_row_adapter_scale(model, alphas):
        mixed = logits(model, batch)
    for row, alpha in enumerate(alphas):
        with scaled_adapter(model, alpha):
            alone = logits(model, batch)[row]
        assert torch.allclose(mixed[row], alone, atol=1e-5), alpha
    assert torch.equal(mixed[1], logits(base, batch)[1])  # α = 0 row is the base, bit for bit
    after = logits(model, batch)
    with scaled_adapter(model, 1.0):
        assert torch.equal(after, logits(model, batch))  # hooks removed


def test_adapter_deltas_equal_peft_get_delta_weight(tiny, tmp_path):
    base, _ = tiny
    model = make_adapter(
        base,
        tmp_path / "a",
        seed=3,
        r=4,
        alpha=16,
        use_rslora=True,
        rank_pattern={"v_proj": 2},
        alpha_pattern={"v_proj": 4},
    )
    deltas = adapter_deltas(read_adapter(tmp_path / "a"))
    layers = {
        name.removeprefix("base_model.model."): module
        for name, module in model.named_modules()
        if hasattr(module, "get_delta_weight")
    }
    assert set(deltas) == set(layers) and len(deltas) == 2 * 3
    for name, delta in deltas.items():
        assert torch.allclose(delta, layers[name].get_delta_weight("default"), atol=1e-6), name


def test_combine_is_the_signed_sum_of_deltas_and_loads_in_peft(tiny, batch, tmp_path):
    base, _ = tiny
    make_adapter(base, tmp_path / "a", seed=4, r=4, alpha=8)
    make_adapter(base, tmp_path / "b", seed=5, r=2, alpha=32, use_rslora=True)
    a, b = read_adapter(tmp_path / "a"), read_adapter(tmp_path / "b")
    combined = combine_adapters([(a, 1.0), (b, -0.5)])
    da, db, dc = adapter_deltas(a), adapter_deltas(b), adapter_deltas(combined)
    for name in dc:
        assert torch.allclose(dc[name], da[name] - 0.5 * db[name], atol=1e-5), name
    write_adapter(combined, tmp_path / "c")
    loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path / "c").eval()
    reference = copy.deepcopy(base)
    with torch.no_grad():
        for name, module in reference.named_modules():
            if name in dc:
                module.weight += dc[name]
    assert torch.allclose(logits(loaded, batch), logits(reference, batch), atol=1e-4)


def test_negative_weight_negates_the_delta(tiny, tmp_path):
    base, _ = tiny
    make_adapter(base, tmp_path / "a", seed=6)
    a = read_adapter(tmp_path / "a")
    negated = adapter_deltas(combine_adapters([(a, -1.0)]))
    for name, delta in adapter_deltas(a).items():
        assert torch.allclose(negated[name], -delta, atol=1e-6)


def test_bad_adapters_are_refused(tiny, tmp_path):
    base, _ = tiny
    from wsteer.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="not found"):
        read_adapter(tmp_path / "missing")
    make_adapter(base, tmp_path / "dora", seed=7, use_dora=True)
    with pytest.raises(ModelLoadError, match="DoRA"):
        read_adapter(tmp_path / "dora")
    make_adapter(base, tmp_path / "a", seed=8)
    (tmp_path / "a" / "adapter_model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(ModelLoadError, match="truncated or corrupt"):
        read_adapter(tmp_path / "a")
