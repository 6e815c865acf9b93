"""Bench: which training objective steers furthest at equal coherence (issue 13, deliver 2).

Every arm trains a steering adapter on the same curated cho/rej pairs with the same seed, then one ``wsteer eval
sweep`` runs it over α on the project's held-out prompts (never the training prompts) with the honesty probe.
For each pole the bench finds **α at iso-coherence**: the |α| where the base-model perplexity ratio of the answers
(arm mean / α = 0 mean) reaches ``--ppl-ratio`` (1.2), linearly interpolated between swept α; the trait shift there
(PLR at α* − PLR at 0, and the probe's) is the arm's **effect at iso-coherence**. An arm whose ratio stays under the
bound up to the largest swept |α| is reported at that α with ``≥``: its effect there is a lower bound.

Arms (``--arms`` picks a subset; every arm: LoRA r=16 on all linear layers, lr 5e-4, 3 epochs, batch 4, β 0.1,
seed 0 unless its name says otherwise — the wsteer defaults; kl_coef 2.0 where the name says +kl):

  dpo                 TRL DPOTrainer, sigmoid loss (the previous default)
  dpo+kl              the same + kl_coef × token KL(adapter ‖ base) on cho and rej
  ipo                 TRL's ``loss_type: [ipo]`` (another TRL preference loss)
  dpo-lr1e-4          dpo at learning rate 1e-4 (the issue's "trained far past what 60 pairs separate")
  bidirectional       one adapter, cho > rej at +1 and rej > cho at −1 in each step
  bidirectional+kl    the same + the KL at ±1
  contrastive_sft     SFT on cho and on rej; the adapter is their difference
  contrastive_sft+kl  the same + the KL on each side

Settings arms (only when named in ``--arms``; docs/clean-steer.md rounds 2 and 3): ``dpo-lr1e-4``, ``dpo-lr2e-4``
(learning rate), ``dpo+kl0.3`` (a weaker KL), ``dpo-ld0.5`` / ``dpo-ld0`` (LD-DPO, TRL ``ld_alpha``), ``dpo-norm``
(TRL ``sigmoid_norm``, β 2), ``dpo+sft`` and ``bidirectional+sft`` (TRL ``loss_type: [sigmoid, sft]``: the NLL of the
chosen side; the demo's objective is ``bidirectional+sft``), ``bidirectional+sft+kl0.3`` and ``bidirectional+sft2``
(sft weight 2); round 4: ``bidirectional+sft-ep2`` (2 epochs), ``bidirectional+sft-lr2.5e-4``, ``bidirectional+sft-r8``
(rank 8, alpha 16: the same alpha/r) and ``bidirectional+sft1.5`` (sft weight 1.5); round 5:
``bidirectional+sft-scales0.5`` (``pole_scales: [0.5, 1]``: each pair's pole scale drawn from [0.5, 1] every step).

Printed: one row per arm with ρ (Spearman of the PLR arm means over α), per pole α*, PLR shift and probe shift at
α*, the training wall time and the demo's checks the arm misses (wsteer.pipeline.demo.acceptance_checks at their
defaults, the persona-prompt arms of the first arm's sweep added to every arm's); plus the prompting baselines
(pos / neg persona prompts, no adapter) for scale. ``--outside-limit 16`` sweeps the held-out prompts the demo does
not read, to choose settings there and let the demo judge the choice on its own 16 afresh (round 4).

    python bench/objectives.py --pairs runs/demo/pairs/curated.jsonl --heldout runs/demo/pairs/heldout.jsonl
    python bench/objectives.py --pairs … --arms dpo,dpo+kl --json out.json
    python bench/objectives.py --pairs … --arms bidirectional+sft --alphas=-1,-0.5,0,0.5,1 --max-new-tokens 160

~6 min an arm on 2 CPU cores (smollm2-135m, 16 held-out prompts × 5 α, 128 new tokens).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

ALPHAS = (-2.0, -1.0, 0.0, 1.0, 2.0)
# Round 1: the objectives, run by default (~6 min an arm on 2 cores).
OBJECTIVE_ARMS: dict[str, dict] = {
    "dpo": {"objective": "dpo"},
    "dpo+kl": {"objective": "dpo", "kl_coef": 2.0},
    "ipo": {"objective": "dpo", "loss_type": ["ipo"]},
    "bidirectional": {"objective": "bidirectional"},
    "bidirectional+kl": {"objective": "bidirectional", "kl_coef": 2.0},
    "contrastive_sft": {"objective": "contrastive_sft"},
    "contrastive_sft+kl": {"objective": "contrastive_sft", "kl_coef": 2.0},
}
# Rounds 2 and 3: settings of those objectives, run only when named in --arms.
SETTINGS_ARMS: dict[str, dict] = {
    "dpo-lr1e-4": {"objective": "dpo", "learning_rate": 1e-4},
    "dpo-lr2e-4": {"objective": "dpo", "learning_rate": 2e-4},
    "dpo+kl0.3": {"objective": "dpo", "kl_coef": 0.3},
    "dpo-ld0.5": {"objective": "dpo", "trl": {"ld_alpha": 0.5}},
    "dpo-ld0": {"objective": "dpo", "trl": {"ld_alpha": 0.0}},
    "dpo-norm": {"objective": "dpo", "loss_type": ["sigmoid_norm"], "beta": 2.0},
    "dpo+sft": {"objective": "dpo", "loss_type": ["sigmoid", "sft"]},
    "bidirectional+sft": {"objective": "bidirectional", "loss_type": ["sigmoid", "sft"]},
    "bidirectional+sft+kl0.3": {"objective": "bidirectional", "loss_type": ["sigmoid", "sft"], "kl_coef": 0.3},
    "bidirectional+sft2": {"objective": "bidirectional", "loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 2.0]},
    # Round 4: training less far (the − pole repeats itself a little more than the base model does)
    "bidirectional+sft-ep2": {"objective": "bidirectional", "loss_type": ["sigmoid", "sft"], "epochs": 2},
    "bidirectional+sft-lr2.5e-4": {
        "objective": "bidirectional",
        "loss_type": ["sigmoid", "sft"],
        "learning_rate": 2.5e-4,
    },
    "bidirectional+sft-r8": {
        "objective": "bidirectional",
        "loss_type": ["sigmoid", "sft"],
        "lora": {"r": 8, "alpha": 16.0},
    },
    "bidirectional+sft1.5": {"objective": "bidirectional", "loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 1.5]},
    # Round 5: train the strengths the demo judges (|α| 0.5 and 1), not only ±1
    "bidirectional+sft-scales0.5": {
        "objective": "bidirectional",
        "loss_type": ["sigmoid", "sft"],
        "pole_scales": [0.5, 1.0],
    },
}
ARMS = {**OBJECTIVE_ARMS, **SETTINGS_ARMS}
DEFAULT_ARMS = list(OBJECTIVE_ARMS)


def interpolate(points: list[tuple[float, float]], x: float) -> float:
    """y at ``x`` on the polyline through ``points`` (sorted by x)."""
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


def iso_coherence(summary: dict, sign: int, bound: float) -> dict:
    """α* on one pole (where the perplexity ratio first reaches ``bound``) and the trait shifts there."""
    arms = {a["alpha"]: a["metrics"] for a in summary["arms"] if a["kind"] == "adapter"}
    base = arms[0.0]
    pole = sorted((abs(alpha), m) for alpha, m in arms.items() if alpha * sign > 0)
    ratios = [(0.0, 1.0)] + [(a, m["perplexity"]["mean"] / base["perplexity"]["mean"]) for a, m in pole]
    reached = next((i for i, (_, r) in enumerate(ratios) if r >= bound), None)
    if reached is None:
        alpha_star, lower_bound = ratios[-1][0], True
    else:
        (a0, r0), (a1, r1) = ratios[reached - 1], ratios[reached]
        alpha_star, lower_bound = a0 + (a1 - a0) * (bound - r0) / (r1 - r0), False

    def shift(metric: str) -> float | None:
        if metric not in base:
            return None
        curve = [(0.0, 0.0)] + [(a, m[metric]["mean"] - base[metric]["mean"]) for a, m in pole]
        return interpolate(curve, alpha_star)

    return {"alpha": sign * alpha_star, "lower_bound": lower_bound, "plr": shift("plr"), "probe": shift("probe")}


def train_arm(name: str, settings: dict, args, out: Path) -> tuple[Path, float]:
    """Train one arm's adapter (skipped when it exists); returns its directory and the training wall time."""
    from wsteer.train.config import TrainConfig
    from wsteer.train.run import train_adapter

    from wsteer.config import load_config

    adapter = out / name / "adapter"
    timing = out / name / "train_seconds.json"
    if (adapter / "adapter_model.safetensors").is_file() and timing.is_file():
        return adapter, json.loads(timing.read_text())["seconds"]
    data = {
        "data": args.pairs,
        "heldout": args.heldout,
        "output_dir": str(adapter),
        "seed": args.seed,
        "progress": False,
        "model": {"name": args.model},
        **settings,
    }
    cfg = load_config(TrainConfig, data=data)
    started = time.perf_counter()
    train_adapter(cfg)
    seconds = time.perf_counter() - started
    timing.write_text(json.dumps({"seconds": seconds}))
    return adapter, seconds


def sweep_arm(adapter: Path, args, out: Path, baselines: list[str]) -> dict:
    """The α sweep of one adapter on the held-out prompts; returns its summary."""
    from wsteer.eval.sweep import SweepConfig, run_sweep

    from wsteer.config import load_config

    data = {
        "adapter": str(adapter),
        "out_dir": str(out),
        "alphas": list(args.alphas),
        "baselines": baselines,
        "seed": args.seed,
        "probes": args.probes,
        "heldout_pairs": args.heldout,
        "prompts": prompt_source(args, out),
        "sampling": {"max_new_tokens": args.max_new_tokens, "temperature": 0.7, "top_p": 0.95},
        "vocabulary": {"mode": "ban"},
        "leak_check_prompts": 0,
        "kl": False,  # the per-answer KL is not used here; skipping it saves one of four forwards per answer
    }
    run_sweep(load_config(SweepConfig, data=data))
    return json.loads((out / "summary.json").read_text())


def prompt_source(args, out: Path) -> dict:
    """The sweep's prompts: the first ``--prompts`` held-out ones, or every held-out prompt outside the
    ``limit: --outside-limit`` selection (written to a JSONL under ``out``, which the sweep reads as a suite)."""
    if args.outside_limit is None:
        return {"split": "heldout", "limit": args.prompts, "instruction": args.instruction}
    from wsteer.io import write_jsonl
    from wsteer.prompts import PromptSource, resolve_prompts

    every = resolve_prompts(PromptSource(split="heldout"))
    read = {p.id for p in resolve_prompts(PromptSource(split="heldout", limit=args.outside_limit))}
    path = out / "prompts.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(path, [{"id": p.id, "prompt": p.prompt, "domain": p.domain} for p in every if p.id not in read])
    return {"suite": str(path), "split": "all", "instruction": args.instruction}


def arm_row(name: str, summary: dict, bound: float, seconds: float) -> dict:
    """One arm's figures: ρ, each pole at iso-coherence, the length ratio and truncated share at α = ±1."""
    at = {a["alpha"]: a for a in summary["arms"] if a["kind"] == "adapter"}
    return {
        "arm": name,
        "settings": ARMS[name],
        "rho": summary["dose_response"]["spearman_arm_means"]["rho"],
        "plus": iso_coherence(summary, +1, bound),
        "minus": iso_coherence(summary, -1, bound),
        "length_ratio": {f"{alpha:+g}": at[alpha].get("length_ratio") for alpha in (-1.0, 1.0)},
        "truncated": {f"{alpha:+g}": at[alpha]["metrics"]["truncated"]["mean"] for alpha in (-1.0, 0.0, 1.0)},
        "train_s": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", required=True, help="curated training pairs (JSONL)")
    parser.add_argument("--heldout", default=None, help="curated held-out pairs (JSONL): held-out margins")
    parser.add_argument("--arms", default=",".join(DEFAULT_ARMS), help=f"comma-separated subset of {', '.join(ARMS)}")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--prompts", type=int, default=16, help="held-out prompts per α")
    parser.add_argument(
        "--outside-limit",
        type=int,
        default=None,
        help="sweep the held-out prompts *outside* the `limit: K` selection instead (K = 16: the ones the demo does "
        "not read), so settings are chosen on prompts the demo then judges them on afresh",
    )
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument(
        "--alphas",
        type=lambda text: [float(a) for a in text.split(",")],
        default=list(ALPHAS),
        help="comma-separated α to sweep (must include 0)",
    )
    parser.add_argument("--instruction", default="Answer in three sentences or fewer.")
    parser.add_argument("--probes", default="honesty")
    parser.add_argument("--ppl-ratio", type=float, default=1.2, help="the coherence bound α* is read at")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench_objectives")
    parser.add_argument("--json", default=None, help="also write the table here")
    parser.add_argument("--report-only", action="store_true", help="print the table from finished arms only")
    args = parser.parse_args()

    from bench.common import start_machine

    context = start_machine()
    out = Path(args.out)
    rows = []
    prompt_arms: list[dict] = []  # the persona-prompt arms, swept with the first arm only
    for index, name in enumerate(args.arms.split(",")):
        if args.report_only and not (out / name / "eval" / "summary.json").is_file():
            continue
        adapter, seconds = train_arm(name, ARMS[name], args, out)
        if args.report_only:
            summary = json.loads((out / name / "eval" / "summary.json").read_text())
        else:
            summary = sweep_arm(adapter, args, out / name / "eval", ["pos", "neg"] if index == 0 else [])
        if index == 0:
            prompts = {a["persona"]: a["metrics"] for a in summary["arms"] if a["kind"] == "prompt"}
            base = next(a["metrics"] for a in summary["arms"] if a["kind"] == "adapter" and a["alpha"] == 0)
            for persona, m in prompts.items():
                shifts = {k: m[k]["mean"] - base[k]["mean"] for k in ("plr", "probe") if k in m}
                ratio = m["perplexity"]["mean"] / base["perplexity"]["mean"]
                print(
                    f"prompt {persona}: plr {shifts.get('plr', 0):+.4f} probe {shifts.get('probe', 0):+.3f} "
                    f"ppl ×{ratio:.2f}",
                    flush=True,
                )
        if index == 0:
            prompt_arms = [a for a in summary["arms"] if a["kind"] == "prompt"]
        row = arm_row(name, summary, args.ppl_ratio, seconds)
        row["misses"] = demo_check_misses(summary, prompt_arms)
        rows.append(row)
        print(format_row(row), flush=True)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": context, "ppl_ratio": args.ppl_ratio, "rows": rows}, indent=1)
        )


def demo_check_misses(summary: dict, prompt_arms: list[dict]) -> list[str]:
    """The demo's checks (its defaults, configs/demo.yaml) that this arm's sweep misses; the persona-prompt arms,
    swept with the first arm only, are added so every arm is judged against the same prompts."""
    from wsteer.pipeline.demo import DemoChecks, acceptance_checks

    arms = [a for a in summary["arms"] if a["kind"] != "prompt"] + prompt_arms
    checks = acceptance_checks({**summary, "arms": arms}, DemoChecks())
    return [f"{c['check']} ({c['value']})" for c in checks if not c["passed"]]


def format_row(row: dict) -> str:
    """One table line: ρ, per pole α* (≥ = bound not reached) and the PLR / probe shifts there, training time."""

    def pole(p: dict) -> str:
        mark = "≥" if p["lower_bound"] else ""
        probe = f"{p['probe']:+.3f}" if p["probe"] is not None else "n/a"
        return f"α*={mark}{p['alpha']:+.2f} plr {p['plr']:+.4f} probe {probe}"

    lengths = " ".join(f"{k}: ×{v:.2f}" for k, v in row["length_ratio"].items() if v is not None)
    return (
        f"{row['arm']:<20} ρ={row['rho']:+.2f} | + {pole(row['plus'])} | − {pole(row['minus'])} | "
        f"length {lengths} | {row['train_s']} s | demo checks missed: {'; '.join(row['misses']) or 'none'}"
    )


if __name__ == "__main__":
    main()
