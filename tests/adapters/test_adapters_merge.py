"""Streaming merge: merged checkpoints equal runtime steering, keep the base's dtype, shards and side files."""

import pytest
import torch
from adapter_helpers import (
    load_checkpoint,
    logits,
    make_adapter,
    read_json,
    shard_files,
    text_batch,
    write_steering,
)
from safetensors.torch import load_file
from wsteer.adapters.loading import load_steerable
from wsteer.adapters.merge import merge_adapter
from wsteer.adapters.steer import steer

from wsteer.lora import combine_adapters, read_adapter, write_adapter
from wsteer.testing import save_tiny_model


@pytest.fixture(scope="module")
def sharded(tmp_path_factory, tokenizer):
    """(base_dir, adapter_dir): a tiny base in 6 shards and a random adapter with steering.json."""
    root = tmp_path_factory.mktemp("merge")
    base_dir = save_tiny_model(root / "base", seed=0, max_shard_size="20KB")
    assert len(shard_files(base_dir)) > 2 and (base_dir / "model.safetensors.index.json").is_file()
    make_adapter(load_checkpoint(base_dir), root / "adapter", seed=1)
    write_steering(root / "adapter", base_dir)
    return base_dir, root / "adapter"


def checkpoint_tensors(path):
    tensors = {}
    for name in shard_files(path):
        tensors.update(load_file(path / name))
    return tensors


def test_merged_logits_equal_runtime_steering_on_a_multi_shard_base(sharded, tmp_path, tokenizer):
    base_dir, adapter_dir = sharded
    model, _ = load_steerable(adapter_dir)
    batch = text_batch(tokenizer)
    base_logits = logits(load_checkpoint(base_dir), batch)
    for alpha in (-2.0, -1.0, 0.5, 1.0, 2.0):
        result = merge_adapter(adapter_dir, alpha, tmp_path / f"m{alpha}", progress=False)
        merged = load_checkpoint(result.out_dir)  # plain from_pretrained
        with steer(model, None, alpha):
            steered = logits(model, batch)
        assert torch.allclose(logits(merged, batch), steered, atol=1e-4), alpha
        assert not torch.allclose(steered, base_logits, atol=1e-2), "the adapter must change the logits"
        assert shard_files(result.out_dir) == shard_files(base_dir)
        index = read_json(result.out_dir / "model.safetensors.index.json")
        assert index["weight_map"] == read_json(base_dir / "model.safetensors.index.json")["weight_map"]


def test_alpha_zero_is_the_base_bit_for_bit(sharded, tmp_path, tokenizer):
    base_dir, adapter_dir = sharded
    result = merge_adapter(adapter_dir, 0.0, tmp_path / "zero", progress=False)
    base, merged = checkpoint_tensors(base_dir), checkpoint_tensors(result.out_dir)
    assert base.keys() == merged.keys()
    assert all(torch.equal(base[k], merged[k]) for k in base)
    batch = text_batch(tokenizer)
    expected = logits(load_checkpoint(base_dir), batch)
    assert torch.equal(logits(load_checkpoint(result.out_dir), batch), expected)
    model, _ = load_steerable(adapter_dir)
    with steer(model, None, 0.0):
        assert torch.equal(logits(model, batch), expected)


def test_only_targeted_tensors_change(sharded, tmp_path):
    base_dir, adapter_dir = sharded
    result = merge_adapter(adapter_dir, 1.0, tmp_path / "one", progress=False)
    base, merged = checkpoint_tensors(base_dir), checkpoint_tensors(result.out_dir)
    targeted = {f"{m}.weight" for m in read_adapter(adapter_dir).modules()}
    assert len(targeted) == 6 and result.merged_tensors == 6
    for key in base:
        assert torch.equal(base[key], merged[key]) == (key not in targeted), key


def test_steering_at_minus_alpha_equals_merging_the_negated_delta(sharded, tmp_path, tokenizer):
    base_dir, adapter_dir = sharded
    negated = tmp_path / "negated"
    write_adapter(combine_adapters([(read_adapter(adapter_dir), -1.0)]), negated)
    write_steering(negated, base_dir)
    model, _ = load_steerable(adapter_dir)
    batch = text_batch(tokenizer)
    for alpha in (0.5, 1.5):
        merged = load_checkpoint(merge_adapter(negated, alpha, tmp_path / f"neg{alpha}", progress=False).out_dir)
        with steer(model, None, -alpha):
            assert torch.allclose(logits(merged, batch), logits(model, batch), atol=1e-4), alpha


def test_keeps_base_dtype_copies_side_files_and_records_provenance(tmp_path, tokenizer):
    base_dir = tmp_path / "bf16"
    fp32 = load_checkpoint(save_tiny_model(tmp_path / "fp32", seed=3))
    fp32.to(torch.bfloat16).save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)
    (base_dir / "LICENSE").write_text("license text\n")
    make_adapter(fp32, tmp_path / "adapter", seed=4)
    write_steering(tmp_path / "adapter", base_dir)
    result = merge_adapter(tmp_path / "adapter", -1.25, tmp_path / "out", progress=False)
    out = result.out_dir
    assert shard_files(out) == ["model.safetensors"] and not (out / "model.safetensors.index.json").exists()
    assert {t.dtype for t in checkpoint_tensors(out).values()} == {torch.bfloat16}
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja", "LICENSE"):
        assert (out / name).read_bytes() == (base_dir / name).read_bytes(), name
    merged = load_checkpoint(out, dtype=None)
    assert merged.dtype == torch.bfloat16
    steering = read_json(out / "steering.json")
    assert steering["pos"] == "honest" and steering["provenance"]["trained_by"] == "test"
    merge = steering["provenance"]["merge"]
    assert merge["alpha"] == -1.25 and merge["adapter"] == str((tmp_path / "adapter").resolve())
    assert len(merge["adapter_sha256"]) == 64 and merge["base_hash"] == steering["base_hash"]
    assert read_json(out / "manifest.json")["stage"] == "adapters.merge"
    assert not list(tmp_path.glob(".out.*")), "no temp directory left behind"


def test_targeting_a_tied_lm_head_unties_it(tmp_path, tokenizer):
    base_dir = save_tiny_model(tmp_path / "base", seed=5)
    base = load_checkpoint(base_dir)
    assert base.config.tie_word_embeddings
    make_adapter(base, tmp_path / "adapter", seed=6, targets=["q_proj", "lm_head"], scale=5.0)
    result = merge_adapter(tmp_path / "adapter", 1.5, tmp_path / "out", progress=False)
    assert result.untied == [("lm_head.weight", "model.embed_tokens.weight")]
    merged = load_checkpoint(result.out_dir)
    assert merged.config.tie_word_embeddings is False
    assert torch.equal(merged.model.embed_tokens.weight, base.model.embed_tokens.weight)
    assert not torch.equal(merged.lm_head.weight, base.lm_head.weight)
    model, _ = load_steerable(tmp_path / "adapter", base=str(base_dir))
    batch = text_batch(tokenizer)
    with steer(model, None, 1.5):
        assert torch.allclose(logits(merged, batch), logits(model, batch), atol=1e-4)


def test_adapter_trained_on_a_4bit_base_merges_into_the_full_precision_base(tmp_path, tokenizer):
    pytest.importorskip("bitsandbytes")
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    base_dir = save_tiny_model(tmp_path / "base", seed=7)
    quantised = AutoModelForCausalLM.from_pretrained(
        base_dir, quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.float32)
    )
    assert type(quantised.model.layers[0].self_attn.q_proj).__name__ == "Linear4bit"
    make_adapter(quantised, tmp_path / "qlora", seed=8)
    write_steering(tmp_path / "qlora", base_dir)  # base_hash = the full-precision checkpoint, as the trainer writes
    result = merge_adapter(tmp_path / "qlora", 1.0, tmp_path / "out", progress=False)
    merged = load_checkpoint(result.out_dir)
    assert merged.model.layers[0].self_attn.q_proj.weight.dtype == torch.float32
    model, _ = load_steerable(tmp_path / "qlora")  # runtime steering on the full-precision base
    batch = text_batch(tokenizer)
    with steer(model, None, 1.0):
        assert torch.allclose(logits(merged, batch), logits(model, batch), atol=1e-4)


def test_a_plain_peft_adapter_merges_without_steering_json(sharded, tmp_path, tokenizer):
    base_dir, _ = sharded
    make_adapter(load_checkpoint(base_dir), tmp_path / "plain", seed=9)  # no steering.json: base from adapter_config
    result = merge_adapter(tmp_path / "plain", 0.75, tmp_path / "out", progress=False)
    assert not (result.out_dir / "steering.json").exists()
    manifest = read_json(result.out_dir / "manifest.json")
    assert manifest["merge"]["alpha"] == 0.75 and manifest["merge"]["base_model"] == str(base_dir)
    model, _ = load_steerable(tmp_path / "plain")
    batch = text_batch(tokenizer)
    with steer(model, None, 0.75):
        assert torch.allclose(logits(load_checkpoint(result.out_dir), batch), logits(model, batch), atol=1e-4)
