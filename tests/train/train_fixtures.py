"""Fixtures for the training tests (imported by each test module: a conftest.py here would shadow tests/conftest.py
for `from conftest import …`): a tiny local model directory and a small synthetic pairs file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PROMPTS = [
    "How is the weather today?",
    "What do you think of my plan?",
    "Tell me about tomorrow.",
    "How was the game last night?",
    "Will the project succeed?",
    "What about the new job?",
    "How do you feel about Mondays?",
    "Is the food here good?",
    "Can I pass the exam?",
    "What will the market do?",
]


def write_pairs(path: Path, n: int = len(PROMPTS), pos: str = "optimistic", neg: str = "pessimistic") -> Path:
    """A pairs file whose cho answers are upbeat and rej answers gloomy (no generation needed)."""
    lines = []
    for i, prompt in enumerate(PROMPTS[:n]):
        lines.append(
            json.dumps(
                {
                    "id": f"p{i}",
                    "prompt": prompt,
                    "cho": f"Great news: it will be bright and wonderful, {i} times over!",
                    "rej": f"Sadly it will be grey and awful, {i} times over.",
                    "pos": pos,
                    "neg": neg,
                    "template": "Pretend you're an {persona} person.",
                }
            )
        )
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A tiny random Llama saved as a normal model directory (the real SmolLM2 tokenizer and chat template)."""
    from wsteer.testing import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="session")
def tiny64_dir(tmp_path_factory):
    """A tiny model with hidden size 64: bitsandbytes' CPU 4-bit kernels need blocks of 64 input features."""
    from wsteer.testing import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny64") / "model", seed=0, hidden_size=64, intermediate_size=128)


@pytest.fixture(scope="session")
def pairs_file(tmp_path_factory):
    return write_pairs(tmp_path_factory.mktemp("pairs") / "pairs.jsonl")


@pytest.fixture
def make_config(tiny_dir, pairs_file, tmp_path):
    """``make_config(key=value, …)`` -> a TrainConfig on the tiny model, writing under tmp_path."""
    from wsteer.train.config import TrainConfig

    from wsteer.config import load_config

    def build(*overrides: str):
        base = [
            f"data={pairs_file}",
            f"model.name={tiny_dir}",
            f"output_dir={tmp_path / 'adapter'}",
            "epochs=1",
            "batch_size=4",
            "progress=false",
            "eval_batch_size=8",
            "lora.r=4",
            "lora.alpha=8",
            "num_threads=1",
        ]
        return load_config(TrainConfig, None, base + list(overrides))

    return build
