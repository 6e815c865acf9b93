"""Shared test helpers: random LoRA adapters on tiny saved models, steering.json files.

A plain module beside the root conftest (so every test directory can import it), not a conftest: test directories
have no __init__.py, so a second conftest.py would shadow the root one that other tests import from.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import torch

from wsteer.models import weights_fingerprint
from wsteer.records import SteeringInfo, write_steering_info

TARGETS = ["q_proj", "v_proj", "down_proj"]


def make_adapter(base, path, seed, r=4, alpha=8, targets=TARGETS, scale=20.0, **kwargs):
    """Save a LoRA adapter with random non-zero A and B on ``base`` (a loaded model) to ``path``; returns it."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets), init_lora_weights=False, **kwargs)
    model = get_peft_model(copy.deepcopy(base), config)
    with torch.no_grad():  # large enough to matter on a tiny model
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.mul_(scale)
    model.save_pretrained(path, save_embedding_layers=False)
    return model.eval()


def steering_info(base_dir, **changes) -> SteeringInfo:
    """A hand-written steering.json for an adapter trained on the checkpoint at ``base_dir``."""
    info = SteeringInfo(
        pos="honest",
        neg="dishonest",
        template="Pretend you're a {persona} person.",
        objective="dpo",
        base_model=str(base_dir),
        base_hash=weights_fingerprint(base_dir),
        data_sha256="0" * 64,
        train_config={"learning_rate": 1e-4, "r": 4},
        metrics={"train_loss": 0.42},
        versions={"peft": "0.21.2"},
        provenance={"trained_by": "test"},
    )
    return dataclasses.replace(info, **changes)


def write_steering(adapter_dir, base_dir, **changes) -> Path:
    """Write steering.json into ``adapter_dir`` (see :func:`steering_info`)."""
    return write_steering_info(adapter_dir, steering_info(base_dir, **changes))


def load_checkpoint(path, dtype=torch.float32):
    """A checkpoint loaded the plain way any user would."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype).eval()


def logits(model, batch):
    """Logits [B, T, V] of a tokenised batch."""
    with torch.no_grad():
        return model(**batch).logits


def text_batch(tokenizer, texts=None, **kwargs):
    """A small left-padded batch (the shared tokenizer's padding side is restored afterwards)."""
    texts = texts or ["Hello there, how are you?", "Tell me about the sea.", "Two", "A much longer sentence to pad."]
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        return tokenizer(texts, return_tensors="pt", padding=True, **kwargs)
    finally:
        tokenizer.padding_side = side


def shard_files(path) -> list[str]:
    """Names of the safetensors files in a checkpoint directory."""
    return sorted(p.name for p in Path(path).glob("*.safetensors"))


def read_json(path):
    """Parsed JSON file."""
    return json.loads(Path(path).read_text())


def one_line_error(result) -> str:
    """The CLI's single ``wsteer: error: …`` line (stderr may also hold earlier progress bars); checks exit 2."""
    assert result.code == 2, result
    assert "Traceback" not in result.err
    lines = [line for line in result.err.replace("\r", "\n").splitlines() if line.startswith("wsteer: error:")]
    assert len(lines) == 1, result.err
    assert result.err.rstrip("\n").endswith(lines[0]), "the error must be the last thing printed"
    return lines[0]
