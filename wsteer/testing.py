"""Tiny models for tests and benches: random weights, real SmolLM2 tokenizer and chat template, no downloads.

The tokenizer comes from the converted SmolLM2 cache (see :mod:`wsteer.models`), so chat formatting in unit tests
is exactly what the real model sees; the network is a 2-layer Llama with hidden size 32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wsteer.models import SMOLLM2_ALIAS, load_tokenizer


def tiny_llama_config(tokenizer, **overrides: Any):
    """A small ``LlamaConfig`` sized to ``tokenizer``'s vocabulary (SmolLM2's layout: tied embeddings, GQA)."""
    from transformers import LlamaConfig

    settings: dict[str, Any] = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    settings.update(overrides)
    return LlamaConfig(**settings)


def tiny_model(seed: int = 0, tokenizer=None, **config_overrides: Any):
    """Return ``(model, tokenizer)``: a randomly initialised tiny Llama (eval mode, fp32) and the SmolLM2 tokenizer."""
    import torch
    from transformers import LlamaForCausalLM

    tokenizer = tokenizer or load_tokenizer(SMOLLM2_ALIAS)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_llama_config(tokenizer, **config_overrides)).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, tokenizer


def save_tiny_model(
    path: str | Path, seed: int = 0, max_shard_size: str | int | None = None, **config_overrides: Any
) -> Path:
    """Write a tiny model + tokenizer as a normal Hugging Face directory (sharded if ``max_shard_size``)."""
    model, tokenizer = tiny_model(seed, **config_overrides)
    path = Path(path)
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(path, safe_serialization=True, **kwargs)
    tokenizer.save_pretrained(path)
    return path
