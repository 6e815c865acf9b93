"""bench/gpu_check.py on CPU: the --dry-run path (tiny model; QLoRA skipped without CUDA, vLLM covered by
tests/eval/test_vllm_engine.py) trains, launches the FSDP2 accelerate config and compares the adapters; the
comparison fails on a planted fault. The real check has not run on a GPU (docs/gpu.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from bench.gpu_check import compare_adapters

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run_trains_under_fsdp_config_and_compares_adapters(tmp_path):
    out = tmp_path / "check"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "bench/gpu_check.py", "--dry-run", "--skip", "vllm", "--out", str(out)]
    done = subprocess.run(
        [*command, "--json", str(tmp_path / "r.json")], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["dry_run"] and result["bf16"]["tokens_per_s"] > 0
    assert result["qlora"] == {"skipped": "bitsandbytes 4-bit training needs CUDA"} or not torch.cuda.is_available()
    fsdp = result["fsdp"]
    assert fsdp["complete"] and fsdp["matches"] and fsdp["missing"] == []

    # Planted faults: a dropped tensor and a changed one are caught.
    broken = tmp_path / "broken"
    shutil.copytree(out / "adapter_fsdp", broken)
    tensors = load_file(str(broken / "adapter_model.safetensors"))
    module = sorted(tensors)[0].split(".lora_")[0]
    dropped = [k for k in tensors if k.startswith(module + ".lora_")]  # one module's A and B
    changed = next(k for k in sorted(tensors) if "lora_B" in k and k not in dropped)
    tensors[changed] = tensors[changed] * 3
    save_file({k: v for k, v in tensors.items() if k not in dropped}, str(broken / "adapter_model.safetensors"))
    verdict = compare_adapters(out / "adapter_bf16", broken)
    assert not verdict["complete"] and set(dropped) <= set(verdict["missing"])
    assert not verdict["matches"]
