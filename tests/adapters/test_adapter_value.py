"""``wsteer.Adapter``: -a, a * w, a + b, steer, merge, save and load are today's functions, exactly.

Each check compares the value's result with the function it must reproduce (steer at α, combine, merge_adapter)
and with the base, so an operation that did nothing, or did something else, fails.
"""

import json
import subprocess
import sys

import pytest
import torch
from adapter_helpers import load_checkpoint, logits, make_adapter, text_batch, write_steering
from safetensors.torch import load_file
from wsteer.adapters import Adapter
from wsteer.adapters.combine import combine
from wsteer.adapters.merge import merge_adapter
from wsteer.adapters.steer import steer

from wsteer.errors import WsteerError
from wsteer.lora import adapter_deltas, lora_layers, read_adapter
from wsteer.records import read_steering_info
from wsteer.testing import save_tiny_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tokenizer):
    """(root, base_dir, honest, authority): two adapters of one base with steering.json, different targets."""
    root = tmp_path_factory.mktemp("value")
    base_dir = save_tiny_model(root / "base", seed=0)
    base = load_checkpoint(base_dir)
    make_adapter(base, root / "honest", seed=1)
    write_steering(root / "honest", base_dir)
    make_adapter(base, root / "authority", seed=2, r=2, alpha=16, targets=["q_proj", "up_proj"])
    write_steering(root / "authority", base_dir, pos="defies authority", neg="defers to authority")
    return root, base_dir, root / "honest", root / "authority"


@pytest.fixture(scope="module")
def batch(tokenizer):
    return text_batch(tokenizer)


def steered_logits(model, adapter, alpha, batch):
    """Logits with the adapter value (or, for a path, today's ``steer``) at ``alpha``."""
    block = steer(model, adapter, alpha) if not isinstance(adapter, Adapter) else adapter.steer(model, alpha)
    with block as steered:
        return logits(steered, batch)


def assert_tensors_equal(dir_a, dir_b, name):
    a, b = load_file(dir_a / name), load_file(dir_b / name)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_negation_and_scaling_are_steering_at_that_alpha(setup, batch):
    _, base_dir, honest, _ = setup
    model = load_checkpoint(base_dir)
    a = Adapter.load(honest)
    base = logits(model, batch)
    at = {alpha: steered_logits(model, honest, alpha, batch) for alpha in (-1.0, 1.0, 1.5, 3.0)}
    assert not torch.allclose(at[1.0], base, atol=1e-3) and not torch.allclose(at[-1.0], at[1.0], atol=1e-3)
    assert torch.equal(steered_logits(model, -a, 1.0, batch), at[-1.0])
    assert torch.equal(steered_logits(model, a * 1.5, 1.0, batch), at[1.5])
    assert torch.equal(steered_logits(model, 1.5 * a, 1.0, batch), at[1.5])
    assert torch.equal(steered_logits(model, a * 1.5, 2.0, batch), at[3.0])
    assert torch.equal(steered_logits(model, a / 2, 3.0, batch), at[1.5])
    assert torch.equal(steered_logits(model, a, 1.0, batch), at[1.0])  # the operands are unchanged
    assert (-a).weights == [-1.0] and a.weights == [1.0] and a.path == honest and (a * 2).path is None
    with pytest.raises(WsteerError, match="finite"):
        a * float("nan")


def test_a_plus_b_is_combine_and_the_sum_of_deltas(setup, batch, tmp_path):
    _, base_dir, honest, authority = setup
    model = load_checkpoint(base_dir)
    a, b = Adapter.load(honest), Adapter.load(authority)
    combined = combine([(honest, 1.0), (authority, -0.5)], tmp_path / "combined")
    value = a - 0.5 * b
    assert value.weights == [1.0, -0.5]
    assert torch.equal(steered_logits(model, value, 2.0, batch), steered_logits(model, combined, 2.0, batch))
    assert torch.equal(steered_logits(model, a + b, 1.0, batch), steered_logits(model, sum([a, b]), 1.0, batch))

    reference = load_checkpoint(base_dir)  # base + 2·(ΔW_a - 0.5·ΔW_b) written into the weights
    with torch.no_grad():
        for path, weight in ((honest, 2.0), (authority, -1.0)):
            for name, delta in adapter_deltas(read_adapter(path)).items():
                reference.get_submodule(name).weight += weight * delta
    assert torch.allclose(steered_logits(model, value, 2.0, batch), logits(reference, batch), atol=1e-4)

    saved = value.save(tmp_path / "saved")  # the same files as `wsteer adapters combine`
    assert_tensors_equal(saved, combined, "adapter_model.safetensors")
    assert json.loads((saved / "adapter_config.json").read_text()) == json.loads(
        (combined / "adapter_config.json").read_text()
    )
    assert read_steering_info(saved) == read_steering_info(combined)
    assert value.info == read_steering_info(combined)


def test_save_and_load_round_trip(setup, batch, tmp_path):
    _, base_dir, honest, _ = setup
    model = load_checkpoint(base_dir)
    a = Adapter.load(honest)
    copy = a.save(tmp_path / "copy")
    assert_tensors_equal(copy, honest, "adapter_model.safetensors")
    assert json.loads((copy / "adapter_config.json").read_text()) == json.loads(
        (honest / "adapter_config.json").read_text()
    )
    assert read_steering_info(copy) == read_steering_info(honest)
    assert torch.equal(steered_logits(model, Adapter.load(copy), 1.0, batch), steered_logits(model, a, 1.0, batch))

    scaled = (a * -1.5).save(tmp_path / "scaled")  # a weighted value is written as an ordinary adapter
    reloaded = Adapter.load(scaled)
    assert reloaded.weights == [1.0]
    assert torch.allclose(
        steered_logits(model, reloaded, 1.0, batch), steered_logits(model, honest, -1.5, batch), atol=1e-5
    )
    with pytest.raises(WsteerError, match="already exists"):
        a.save(tmp_path / "copy")
    assert a.save(tmp_path / "copy", overwrite=True) == tmp_path / "copy"


def test_merge_is_todays_merge(setup, tmp_path):
    _, base_dir, honest, authority = setup
    a, b = Adapter.load(honest), Adapter.load(authority)
    mine = (a * 1.5).merge(1.0, tmp_path / "mine", progress=False)
    today = merge_adapter(honest, 1.5, tmp_path / "today", progress=False)
    assert mine.alpha == today.alpha == 1.5 and mine.merged_tensors == today.merged_tensors > 0
    assert_tensors_equal(tmp_path / "mine", tmp_path / "today", "model.safetensors")
    assert read_steering_info(tmp_path / "mine").provenance["merge"]["alpha"] == 1.5
    base = load_file(base_dir / "model.safetensors")
    merged = load_file(tmp_path / "mine" / "model.safetensors")
    assert any(not torch.equal(base[k], merged[k]) for k in base)

    combined = combine([(honest, 1.0), (authority, 1.0)], tmp_path / "combined")
    (a + b).merge(-2.0, tmp_path / "sum", progress=False)
    merge_adapter(combined, -2.0, tmp_path / "sum_today", progress=False)
    assert_tensors_equal(tmp_path / "sum", tmp_path / "sum_today", "model.safetensors")


def test_steer_restores_the_base_on_exit_and_on_error(setup, batch):
    _, base_dir, honest, authority = setup
    a, b = Adapter.load(honest), Adapter.load(authority)
    model, _ = a.load_base()
    assert model.wsteer_source["path"] == str(base_dir)
    base = logits(model, batch)
    for value in (a, -a * 2, a + b):
        with value.steer(model, 1.0) as steered:
            assert not torch.allclose(logits(steered, batch), base, atol=1e-3), value
        assert torch.equal(logits(model, batch), base) and not lora_layers(model)
        with pytest.raises(RuntimeError, match="boom"), value.steer(model, -1.0):
            raise RuntimeError("boom")
        assert torch.equal(logits(model, batch), base) and not lora_layers(model)


def test_adapters_of_different_bases_do_not_add(setup, tmp_path):
    _, _, honest, _ = setup
    other_base = save_tiny_model(tmp_path / "other", seed=5)
    make_adapter(load_checkpoint(other_base), tmp_path / "elsewhere", seed=3)
    write_steering(tmp_path / "elsewhere", other_base)
    with pytest.raises(WsteerError, match="different bases"):
        Adapter.load(honest) + Adapter.load(tmp_path / "elsewhere")


def test_wsteer_adapter_is_exported_lazily():
    code = (
        "import sys, wsteer; assert 'wsteer.adapters.adapter' not in sys.modules; "
        "from wsteer.adapters.adapter import Adapter; assert wsteer.Adapter is Adapter; print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
