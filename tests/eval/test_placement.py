"""Sharded and quantised evaluation on the hf engine: a tiny model spread by device_map + max_memory (here over
CPU and disk offload: no GPU in CI) gives the same logits, sweep and A/B as the model in one piece, with per-row α
still exact; 4-bit loading is checked as far as bitsandbytes runs on CPU."""

import json

import pytest
import torch
from adapter_helpers import make_adapter, write_steering
from wsteer.adapters.loading import load_steerable
from wsteer.eval.ab import ABConfig, run_ab
from wsteer.eval.sweep import SweepConfig, run_sweep

from wsteer.chat import pad_batch
from wsteer.generation import SamplingConfig
from wsteer.lora import per_row_adapter_scale
from wsteer.models import Placement, load_model
from wsteer.prompts import PromptSource
from wsteer.testing import save_tiny_model

ALPHAS = [-1.0, 0.0, 2.0]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(adapter dir, base dir): a 4-layer tiny base and a random adapter on it."""
    root = tmp_path_factory.mktemp("placement")
    base_dir = save_tiny_model(root / "base", seed=5, num_hidden_layers=4)
    make_adapter(load_model(str(base_dir)), root / "adapter", seed=6, scale=40.0)
    write_steering(root / "adapter", base_dir)
    return root / "adapter", base_dir


def spread(tmp_path) -> Placement:
    """device_map=auto with a CPU cap that holds the embeddings and a layer or two: the rest goes to disk."""
    return Placement(device_map="auto", max_memory={"cpu": "6400KB"}, offload_folder=str(tmp_path / "offload"))


def batch_logits(model, tokenizer, alphas):
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in ("Hello there", "The sea is", "Why?")]
    input_ids, mask = pad_batch(ids, tokenizer.pad_token_id, side="left")  # [3, T]
    with torch.inference_mode(), per_row_adapter_scale(model, alphas):
        return model(input_ids=input_ids, attention_mask=mask).logits.float()  # [3, T, V]


def test_max_memory_spreads_the_model_and_logits_match(saved, tmp_path):
    adapter, _ = saved
    whole, tokenizer = load_steerable(adapter)
    sharded, _ = load_steerable(adapter, placement=spread(tmp_path))
    devices = set(sharded.wsteer_device_map.values())
    assert {"cpu", "disk"} <= devices, sharded.wsteer_device_map
    reference, result = batch_logits(whole, tokenizer, ALPHAS), batch_logits(sharded, tokenizer, ALPHAS)
    torch.testing.assert_close(result, reference, rtol=1e-5, atol=1e-5)
    # Per-row α still acts on the offloaded layers: α = 2 is not the base, α = 0 is exactly the base.
    assert not torch.allclose(result[2], batch_logits(sharded, tokenizer, [0.0, 0.0, 0.0])[2], atol=1e-3)
    torch.testing.assert_close(result[1], batch_logits(sharded, tokenizer, [0.0, 0.0, 0.0])[1])


def test_sweep_on_a_spread_model_equals_the_whole_model(saved, tmp_path):
    adapter, _ = saved
    summaries, texts = [], []
    for name, placement in (("whole", Placement()), ("spread", spread(tmp_path))):
        cfg = SweepConfig(
            adapter=str(adapter),
            alphas=ALPHAS,
            baselines=["pos"],
            prompts=PromptSource(split="heldout", limit=2),
            sampling=SamplingConfig(max_new_tokens=6, temperature=0.7),
            leak_check_prompts=1,
            placement=placement,
            out_dir=str(tmp_path / name),
            batch_size=8,
        )
        result = run_sweep(cfg)
        rows = [json.loads(line) for line in (result.out_dir / "generations.jsonl").read_text().splitlines()]
        texts.append([(r["arm"], r["text"]) for r in rows])
        summaries.append({a["name"]: a["metrics"] for a in result.summary["arms"]})
    assert texts[0] == texts[1]
    for arm, metrics in summaries[0].items():
        for metric in ("plr", "kl", "perplexity"):
            assert summaries[1][arm][metric]["mean"] == pytest.approx(metrics[metric]["mean"], rel=1e-4, abs=1e-5)


def test_ab_on_a_spread_model_equals_the_whole_model(saved, tmp_path):
    adapter, _ = saved
    results = []
    for name, placement in (("whole", Placement()), ("spread", spread(tmp_path))):
        cfg = ABConfig(
            a=f"adapter:{adapter}@2",
            b="base",
            prompts=PromptSource(split="heldout", limit=2),
            sampling=SamplingConfig(max_new_tokens=6, temperature=0.7),
            placement=placement,
            out_dir=str(tmp_path / name),
            batch_size=4,
        )
        results.append(run_ab(cfg)[0]["paired"])
    for metric in ("plr", "kl", "perplexity", "tokens"):
        assert results[1][metric]["mean"] == pytest.approx(results[0][metric]["mean"], rel=1e-4, abs=1e-5), metric
    assert results[0]["kl"]["mean_a"] > 0  # arm A is steered: the comparison is not base against base


def test_4bit_placement_reaches_bitsandbytes(tmp_path):
    """bitsandbytes 4-bit on CPU: the base loads quantised, the adapter attaches, the forward runs."""
    from wsteer.models import quantization_config

    base_dir = save_tiny_model(tmp_path / "base", seed=5, hidden_size=128, intermediate_size=256)
    make_adapter(load_model(str(base_dir)), tmp_path / "adapter", seed=6, scale=40.0)
    write_steering(tmp_path / "adapter", base_dir)
    adapter = tmp_path / "adapter"
    placement = Placement(quantization="4bit")
    config = quantization_config(placement.model_config("x", "float32"))
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4"
    model, tokenizer = load_steerable(adapter, placement=placement)
    assert getattr(model.get_base_model(), "is_loaded_in_4bit", False)
    logits = batch_logits(model, tokenizer, ALPHAS)
    assert torch.isfinite(logits).all()
