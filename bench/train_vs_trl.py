"""Bench: ``wsteer train`` against a vanilla TRL DPOTrainer + LoRA with TRL's default settings, same pairs, same epochs.

Every arm runs in its own subprocess (so peak RSS is per arm: ``os.wait4`` reports the child's own maximum); wall
time is end to end from spawn to exit: imports, model load, data preparation, reference log-probs, training and the
held-out evaluation. The held-out margin of every arm is measured the same way, with
``wsteer.scoring.preference_margins`` (mean-token logp(cho) - logp(rej)) with the adapter at +1 (and -1 where the
objective makes -1 meaningful) minus the base model's margin.

    python bench/train_vs_trl.py                                  # dpo, bidirectional, contrastive_sft vs TRL
    python bench/train_vs_trl.py --arms trl,trl+precompute,trl+precompute+nogc,trl+precompute+nogc+fp32,dpo
    python bench/train_vs_trl.py --pairs tests/data/smollm2_pairs.jsonl --epochs 3 --batch-size 4 --threads 2
    python bench/train_vs_trl.py --arms trl,dpo --epochs 1 --limit-pairs 12 --threads 1   # a quick smoke run
    python bench/train_vs_trl.py --json out.json  # also write {"arms": rows, "headline": …} (bench/common.py)

Arms: ``trl`` (TRL defaults: reference forward every step, gradient checkpointing on, bf16 autocast (TRL's
default; on a machine without GPUs it needs ``use_cpu=True``, the one setting added), peft's default LoRA: r=8,
alpha=8 on q_proj/v_proj, TRL's default learning rate 1e-6);
``trl+…`` switch single TRL settings to wsteer's choices to show where the time goes; ``dpo``,
``bidirectional``, ``contrastive_sft`` run ``wsteer train`` with its defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

WSTEER_ARMS = ("dpo", "bidirectional", "contrastive_sft")
TRL_KNOBS = {
    "precompute": "precompute_ref_log_probs=True",
    "nogc": "gradient_checkpointing=False",
    "fp32": "bf16=False",
    "compact": "score completion positions only",
    "wsteer-lora": "wsteer's LoRA (r=16, alpha=32, all linear layers) and lr=2e-4",
}
# The goals for wsteer's default objective against TRL's defaults: (wall, peak RSS, held-out shift).
DPO_GOALS = {"wall_s": ("≤ 0.6×", 0.6), "peak_rss_mb": ("≤ 1.0×", 1.0), "shift_plus": ("≥ vanilla", None)}


# --------------------------------------------------------------------------------------------- children
def _heldout_shift(model, tokenizer, heldout: list[dict], minus: bool) -> dict:
    from wsteer.lora import scaled_adapter
    from wsteer.scoring import preference_margins

    args = ([r["prompt"] for r in heldout], [r["cho"] for r in heldout], [r["rej"] for r in heldout])
    model.eval()
    out = {}
    for arm, alpha in (("base", 0.0), ("plus", 1.0), ("minus", -1.0))[: 3 if minus else 2]:
        with scaled_adapter(model, alpha):
            values = preference_margins(model, tokenizer, *args, batch_size=4)  # wsteer's eval_batch_size
        out[arm] = sum(values) / len(values)
    result = {"shift_plus": out["plus"] - out["base"]}
    if minus:
        result["shift_minus"] = out["minus"] - out["base"]
    return result


def child_trl(args: argparse.Namespace, knobs: set[str], out_dir: str) -> dict:
    """Vanilla TRL: DPOTrainer + peft LoRA, TRL's defaults except the knobs named in the arm."""
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer
    from wsteer.train.data import load_pair_set, preference_rows, to_dataset

    from wsteer.models import resolve_model_path

    pairs = load_pair_set(args.pairs, None, args.heldout_fraction, args.seed)
    path = resolve_model_path(args.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    # use_cpu: on a machine without GPUs TRL's default bf16=True refuses to start unless use_cpu is set.
    settings = dict(
        output_dir=out_dir,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        seed=args.seed,
        report_to="none",
        save_strategy="no",
        use_cpu=not torch.cuda.is_available(),
    )
    if "precompute" in knobs:
        settings["precompute_ref_log_probs"] = True
    if "nogc" in knobs:
        settings["gradient_checkpointing"] = False
    if "fp32" in knobs:
        settings["bf16"] = False
    lora = LoraConfig(task_type="CAUSAL_LM")
    if "wsteer-lora" in knobs:
        from wsteer.train.config import ALL_LINEAR

        lora = LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, target_modules=list(ALL_LINEAR))
        settings["learning_rate"] = 2e-4
    if "compact" in knobs:
        from wsteer.train.objectives import score_completion_tokens_only_on_cpu

        score_completion_tokens_only_on_cpu()
    trainer = DPOTrainer(
        model=model,
        args=DPOConfig(**settings),
        train_dataset=to_dataset(preference_rows(pairs.train)),
        processing_class=tokenizer,
        peft_config=lora,
    )
    trainer.train()
    return {"steps": trainer.state.global_step, **_heldout_shift(trainer.model, tokenizer, pairs.heldout, False)}


def child_wsteer(args: argparse.Namespace, objective: str, out_dir: str) -> dict:
    """``wsteer train`` with its defaults, as the CLI would run it."""
    from wsteer.train.config import TrainConfig
    from wsteer.train.run import train_adapter

    from wsteer.config import load_config

    overrides = [
        f"data={args.pairs}",
        f"output_dir={out_dir}/adapter",
        f"objective={objective}",
        f"epochs={args.epochs}",
        f"batch_size={args.batch_size}",
        f"seed={args.seed}",
        f"heldout_fraction={args.heldout_fraction}",
        f"model.name={args.model}",
        "progress=false",
    ]
    result = train_adapter(load_config(TrainConfig, None, overrides))
    held = result.metrics["heldout"]
    return {"steps": result.metrics["steps"], "shift_plus": held["shift_plus"], "shift_minus": held["shift_minus"]}


def run_child(args: argparse.Namespace) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        if args.child in WSTEER_ARMS:
            result = child_wsteer(args, args.child, tmp)
        else:
            knobs = set(args.child.split("+")[1:])
            unknown = knobs - set(TRL_KNOBS)
            if args.child.split("+")[0] != "trl" or unknown:
                raise SystemExit(f"unknown arm {args.child!r}")
            result = child_trl(args, knobs, tmp)
    result["inner_s"] = round(time.time() - started, 1)
    print("BENCH_RESULT " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------------------------- parent
def run_arm(arm: str, args: argparse.Namespace) -> dict:
    """Run one arm in a fresh process; wall time from spawn to exit, peak RSS from the child's own rusage."""
    command = [
        sys.executable,
        __file__,
        "--child",
        arm,
        "--pairs",
        str(args.pairs),
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--heldout-fraction",
        str(args.heldout_fraction),
        "--seed",
        str(args.seed),
        "--model",
        args.model,
        "--threads",
        str(args.threads),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "TQDM_DISABLE": "1",
    }
    started = time.time()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.time() - started
        log.seek(0)
        output = log.read()
    lines = [line for line in output.splitlines() if line.startswith("BENCH_RESULT ")]
    if status != 0 or not lines:
        raise SystemExit(f"arm {arm} failed (status {status}):\n{output[-3000:]}")
    result = json.loads(lines[-1].split(" ", 1)[1])
    return {"arm": arm, "wall_s": round(wall, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024), **result}


def print_table(rows: list[dict], baseline: dict) -> None:
    header = (
        f"{'arm':<34} {'wall s':>7} {'x trl':>6} {'RSS MB':>7} {'x trl':>6} {'steps':>5} "
        f"{'held-out shift +1':>17} {'shift -1':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        minus = row.get("shift_minus")
        print(
            f"{row['arm']:<34} {row['wall_s']:>7.1f} {row['wall_s'] / baseline['wall_s']:>6.2f} "
            f"{row['peak_rss_mb']:>7} {row['peak_rss_mb'] / baseline['peak_rss_mb']:>6.2f} {row['steps']!s:>5} "
            f"{row['shift_plus']:>+17.4f} {'' if minus is None else f'{minus:+.4f}':>9}"
        )


def headline_rows(rows: list[dict], command: str) -> list[dict]:
    """Wall time, peak RSS and held-out shift at +1 of every arm against the first (the baseline)."""
    from bench.common import headline_row, ratio_of

    baseline, headline = rows[0], []
    measures = (
        ("wall_s", "train wall time (spawn to exit)", lambda v: f"{v:.1f} s"),
        ("peak_rss_mb", "train peak RSS", lambda v: f"{v} MB"),
        ("shift_plus", "held-out margin shift at +1", lambda v: f"{v:+.4f}"),
    )
    for row in rows[1:]:
        for key, what, show in measures:
            ratio = ratio_of(row[key], baseline[key])
            if key == "shift_plus" and baseline[key] <= 0:
                ratio = None  # a ratio to a shift that is zero or the wrong way round reads as nonsense
            goal, met = None, None
            if row["arm"] == "dpo" and baseline["arm"] == "trl":
                goal, limit = DPO_GOALS[key]
                met = row[key] >= baseline[key] if limit is None else ratio is not None and ratio <= limit
            headline.append(
                headline_row(
                    "train_vs_trl",
                    f"{what}, {row['arm']} vs {baseline['arm']}",
                    show(row[key]),
                    show(baseline[key]),
                    ratio,
                    command,
                    goal=goal,
                    met=met,
                )
            )
    return headline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pairs",
        type=Path,
        default=REPO_ROOT / "tests/data/smollm2_pairs.jsonl",
        help="curated pairs (JSONL of PairRecord)",
    )
    parser.add_argument("--model", default="smollm2-135m", help="base model (alias or directory)")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--batch-size", type=int, default=4, help="pairs per step, the same for every arm")
    parser.add_argument("--heldout-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads per arm (0 = torch's default)")
    parser.add_argument(
        "--arms",
        default="trl," + ",".join(WSTEER_ARMS),
        help="comma-separated; the first is the baseline of the ratios",
    )
    parser.add_argument(
        "--limit-pairs", type=int, default=0, help="use only the first N pairs of --pairs (0 = all; quick runs)"
    )
    parser.add_argument("--json", type=Path, help="also write the rows, headline and machine here (JSON)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_child(args)
        return 0
    if not args.pairs.is_file():
        parser.error(f"{args.pairs} not found (pass --pairs FILE with curated pairs)")
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    from bench.common import machine_context, reproduce_command, write_result

    machine = machine_context(args.threads or _default_torch_threads())
    print(
        f"pairs={args.pairs}{f' (first {args.limit_pairs})' if args.limit_pairs else ''} epochs={args.epochs:g} "
        f"batch={args.batch_size} threads={args.threads or 'default'} "
        f"cpus={os.cpu_count()} — arms run one at a time, each in its own process",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-pairs-") as tmp:
        arm_args = argparse.Namespace(**vars(args))
        if args.limit_pairs:
            arm_args.pairs = first_pairs(args.pairs, args.limit_pairs, Path(tmp) / "pairs.jsonl")
        for arm in arms:
            rows.append(run_arm(arm, arm_args))
            print(f"  {arm}: {rows[-1]['wall_s']} s, {rows[-1]['peak_rss_mb']} MB", flush=True)
    print()
    print_table(rows, rows[0])
    if args.json:
        settings = {key: value for key, value in vars(args).items() if key not in ("json", "child")}
        write_result(args.json, headline_rows(rows, reproduce_command(argv)), machine, arms=rows, settings=settings)
        print(f"wrote {args.json}")
    return 0


def first_pairs(pairs: Path, limit: int, out: Path) -> Path:
    """Write the first ``limit`` records of ``pairs`` to ``out`` (every arm then reads the same subset)."""
    lines = [line for line in pairs.read_text(encoding="utf-8").splitlines() if line.strip()]
    out.write_text("".join(line + "\n" for line in lines[:limit]), encoding="utf-8")
    return out


def _default_torch_threads() -> int:
    """The intra-op threads an arm gets without --threads (torch's default in this environment)."""
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    sys.exit(main())
