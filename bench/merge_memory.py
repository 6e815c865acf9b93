"""Peak memory of `wsteer adapters merge` (streamed shard by shard) vs peft's `merge_and_unload` + save.

Both merge the same random LoRA adapter (all linear layers, r=16) into the same base: the embedded SmolLM2-135M
re-saved with a small max_shard_size so it has several shards. Each merge runs in its own subprocess, which
reports its resident set after importing the same libraries (the baseline) and its peak (VmHWM). Printed: peak
RSS above the import baseline, in MB and in multiples of the largest shard, and the ratio wsteer / peft. The two
merged checkpoints are compared tensor by tensor as a correctness check.

    python bench/merge_memory.py [--model smollm2-135m] [--shard-size 100MB] [--rank 16] [--alpha 1.5]
    python bench/merge_memory.py --json out.json   # also write the headline row (bench/common.py) for run_all

Goal: wsteer's peak above baseline <= 1.5x the largest shard. RSS counts file pages mapped by safetensors too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _import_everything() -> None:
    """The same imports in both children, so the baselines compare."""
    import peft  # noqa: F401
    import safetensors.torch  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    import wsteer.adapters.merge

    import wsteer.lora  # noqa: F401


def child(method: str, base: str, adapter: str, out: str, alpha: float, shard_size: str) -> None:
    """Run one merge and print {"baseline_kb", "peak_kb"} as JSON on the last line."""
    _import_everything()
    baseline = _status_kb("VmRSS")
    if method == "wsteer":
        from wsteer.adapters.merge import merge_adapter

        merge_adapter(adapter, alpha, out, base=base, progress=False)
    else:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        from wsteer.lora import scaled_adapter

        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        model = PeftModel.from_pretrained(model, adapter)
        with scaled_adapter(model, alpha):
            merged = model.merge_and_unload()
        merged.save_pretrained(out, max_shard_size=shard_size)
    print(json.dumps({"baseline_kb": baseline, "peak_kb": _status_kb("VmHWM")}))


def prepare(workdir: Path, model: str, shard_size: str, rank: int) -> tuple[Path, Path]:
    """Re-save the model in shards and make a random adapter with steering.json; returns (base, adapter)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from wsteer.models import load_model, load_tokenizer, weights_fingerprint
    from wsteer.records import SteeringInfo, write_steering_info

    base_dir, adapter_dir = workdir / "base", workdir / "adapter"
    if not (base_dir / "model.safetensors.index.json").is_file():
        loaded = load_model(model, dtype="float32")
        loaded.save_pretrained(base_dir, max_shard_size=shard_size)
        load_tokenizer(model).save_pretrained(base_dir)
        del loaded
    if not (adapter_dir / "adapter_model.safetensors").is_file():
        torch.manual_seed(0)
        from transformers import AutoModelForCausalLM

        loaded = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
        peft_model = get_peft_model(
            loaded, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=TARGETS, init_lora_weights=False)
        )
        peft_model.save_pretrained(adapter_dir)
        write_steering_info(
            adapter_dir,
            SteeringInfo(
                pos="bench",
                neg="bench",
                template="{persona}",
                objective="random",
                base_model=str(base_dir),
                base_hash=weights_fingerprint(base_dir),
            ),
        )
    return base_dir, adapter_dir


def run_child(method: str, base: Path, adapter: Path, out: Path, alpha: float, shard_size: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            method,
            "--base",
            str(base),
            "--adapter",
            str(adapter),
            "--out",
            str(out),
            "--alpha",
            str(alpha),
            "--shard-size",
            shard_size,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{method} merge failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def max_difference(a: Path, b: Path) -> float:
    """Largest absolute difference between same-named tensors of two checkpoints (peft ties lm_head on save)."""
    from safetensors import safe_open

    def index(path: Path) -> dict[str, Path]:
        names = {}
        for shard in sorted(path.glob("*.safetensors")):
            with safe_open(str(shard), "pt") as handle:
                names.update({key: shard for key in handle.keys()})  # noqa: SIM118 - not iterable
        return names

    left, right = index(a), index(b)
    worst = 0.0
    for key in sorted(left.keys() & right.keys()):
        with safe_open(str(left[key]), "pt") as x, safe_open(str(right[key]), "pt") as y:
            worst = max(worst, float((x.get_tensor(key).float() - y.get_tensor(key).float()).abs().max()))
    return worst


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The bench's command line (the hidden flags run one merge in a child process)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--shard-size", default="100MB")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--alpha", type=float, default=1.5)
    parser.add_argument("--workdir", help="keep the re-saved base and adapter here (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the headline row and figures here (for run_all)")
    parser.add_argument("--child", choices=["wsteer", "peft"], help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--adapter", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def measure(args: argparse.Namespace) -> dict:
    """Merge with both methods, each in its own process; the figures (shard sizes, RSS, largest difference)."""
    with tempfile.TemporaryDirectory(prefix="merge_memory_") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        base, adapter = prepare(workdir, args.model, args.shard_size, args.rank)
        shards = sorted(base.glob("*.safetensors"))
        largest, total = max(p.stat().st_size for p in shards), sum(p.stat().st_size for p in shards)
        results = {}
        for method in ("wsteer", "peft"):
            out = Path(tmp) / f"merged_{method}"
            results[method] = run_child(method, base, adapter, out, args.alpha, args.shard_size)
        difference = max_difference(Path(tmp) / "merged_wsteer", Path(tmp) / "merged_peft")
    return {
        "shards": len(shards),
        "total_mb": total / MB,
        "largest_shard_mb": largest / MB,
        "baseline_mb": {method: r["baseline_kb"] / 1024 for method, r in results.items()},
        "peak_mb": {method: r["peak_kb"] / 1024 for method, r in results.items()},
        "above_baseline_mb": {method: (r["peak_kb"] - r["baseline_kb"]) * 1024 / MB for method, r in results.items()},
        "max_abs_difference": difference,
    }


def print_figures(args: argparse.Namespace, figures: dict) -> None:
    """The human-readable result: RSS per method against the largest shard, the goal, the numeric difference."""
    largest, above = figures["largest_shard_mb"], figures["above_baseline_mb"]
    print(
        f"base: {args.model}, {figures['shards']} shards, {figures['total_mb']:.0f} MB in all, largest shard "
        f"{largest:.0f} MB; adapter r={args.rank} on {', '.join(TARGETS)}; alpha={args.alpha}"
    )
    print(f"{'method':<8}{'baseline MB':>13}{'peak MB':>10}{'above MB':>10}{'x largest shard':>17}")
    for method in above:
        print(
            f"{method:<8}{figures['baseline_mb'][method]:>13.0f}{figures['peak_mb'][method]:>10.0f}"
            f"{above[method]:>10.0f}{above[method] / largest:>17.2f}"
        )
    peak = figures["peak_mb"]
    print(
        f"ratio wsteer / peft (peak above baseline): {above['wsteer'] / above['peft']:.2f}; "
        f"total peak: {peak['wsteer'] / peak['peft']:.2f}"
    )
    print(f"goal: wsteer <= 1.5x the largest shard -> {'met' if above['wsteer'] <= 1.5 * largest else 'NOT met'}")
    print(f"max |wsteer - peft| over shared tensors: {figures['max_abs_difference']:.2e}")


def main(argv: list[str] | None = None) -> None:
    """Run the bench (or, with the hidden --child, one merge), print it, and write ``--json`` when asked."""
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    if args.child:
        child(args.child, args.base, args.adapter, args.out, args.alpha, args.shard_size)
        return
    import torch

    from bench.common import machine_context

    machine = machine_context(torch.get_num_threads())  # the children run with torch's default threads
    figures = measure(args)
    print_figures(args, figures)
    if args.json:
        write_json_result(args, machine, figures, argv)
        print(f"wrote {args.json}")


def write_json_result(args: argparse.Namespace, machine: dict, figures: dict, argv: list[str] | None) -> None:
    """The --json file: one headline row (peak RSS above baseline, wsteer vs peft) and the figures."""
    from bench.common import headline_row, reproduce_command, write_result

    above, largest = figures["above_baseline_mb"], figures["largest_shard_mb"]
    headline = [
        headline_row(
            "merge_memory",
            "merge peak RSS above import baseline, wsteer vs peft merge_and_unload",
            f"{above['wsteer']:.0f} MB ({above['wsteer'] / largest:.2f}× largest shard)",
            f"{above['peft']:.0f} MB ({above['peft'] / largest:.2f}× largest shard)",
            above["wsteer"] / above["peft"],
            reproduce_command(argv),
            goal=f"wsteer ≤ 1.5× largest shard ({largest:.0f} MB)",
            met=above["wsteer"] <= 1.5 * largest,
        )
    ]
    internal = ("json", "child", "base", "adapter", "out")  # --json and the children's hidden flags
    settings = {key: value for key, value in vars(args).items() if key not in internal}
    write_result(args.json, headline, machine, settings=settings, figures=figures)


if __name__ == "__main__":
    main()
