"""The real SmolLM2-135M: a streamed merge of a multi-shard base equals runtime steering; calibration runs."""

import copy

import pytest
import torch
from adapter_helpers import (
    load_checkpoint,
    logits,
    make_adapter,
    shard_files,
    text_batch,
    write_steering,
)
from wsteer.adapters.calibrate import CalibrateConfig, search_alphas
from wsteer.adapters.loading import load_steerable
from wsteer.adapters.merge import merge_adapter
from wsteer.adapters.steer import steer

from wsteer.chat import build_messages, render_prompt
from wsteer.lora import scaled_adapter

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real(tmp_path_factory, smollm2):
    """(base_dir, adapter_dir): SmolLM2 re-saved in ~100 MB shards and a random rank-8 adapter for it."""
    model, tokenizer = smollm2
    root = tmp_path_factory.mktemp("smollm2")
    base_dir = root / "base"
    model.save_pretrained(base_dir, max_shard_size="100MB")
    tokenizer.save_pretrained(base_dir)
    make_adapter(model, root / "adapter", seed=0, r=8, alpha=16, scale=0.05)
    write_steering(root / "adapter", base_dir)
    return base_dir, root / "adapter"


def test_merged_smollm2_equals_runtime_steering(real, smollm2, tmp_path):
    base_dir, adapter_dir = real
    tokenizer = smollm2[1]
    assert len(shard_files(base_dir)) > 3
    prompts = [render_prompt(tokenizer, build_messages(p)) for p in ("Why is the sky blue?", "Say hi.")]
    batch = text_batch(tokenizer, prompts, add_special_tokens=False)
    steerable, _ = load_steerable(adapter_dir)
    merged_dir = merge_adapter(adapter_dir, -1.5, tmp_path / "merged", progress=False).out_dir
    assert shard_files(merged_dir) == shard_files(base_dir)
    merged = load_checkpoint(merged_dir)
    with steer(steerable, None, -1.5):
        steered = logits(steerable, batch)
    base = logits(load_checkpoint(base_dir), batch)
    assert (steered - base).abs().max() > 1.0, "the adapter must change the logits"
    ours = logits(merged, batch)
    reference = copy.deepcopy(steerable)
    with scaled_adapter(reference, -1.5):
        peft_merged = reference.merge_and_unload()  # peft's own in-memory merge at the same α
    assert torch.allclose(ours, logits(peft_merged, batch), atol=1e-5)
    # 30 fp32 layers with logits up to ~40: merged and runtime paths round differently by a few 1e-4, for peft's
    # own merge exactly as for ours (the tiny-model tests hold the 1e-4 bound)
    assert (ours - steered).abs().max() < 2e-3


def test_calibration_on_smollm2_reaches_the_target(real):
    _, adapter_dir = real
    model, tokenizer = load_steerable(adapter_dir)
    prompts = ["Why is the sky blue?", "Give me three tips for a job interview.", "Write two sentences about cats."]
    cfg = CalibrateConfig(max_new_tokens=12, prompts=prompts, target_kl=1.0, batch_size=8, rel_tol=0.02)
    result = search_alphas(model, tokenizer, prompts, cfg, progress=False)
    assert result.alpha_plus > 0 > result.alpha_minus
    assert abs(result.plus.kl_quantile - 1.0) < 0.1 and abs(result.minus.kl_quantile - 1.0) < 0.1
    assert result.plus_outputs.base_perplexity > 0 and result.base_outputs.base_perplexity > 0
