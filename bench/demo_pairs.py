"""Bench: which library pair steers most cleanly on the embedded model (issue 13, deliver 5).

Each pair runs the whole demo pipeline (``wsteer.pipeline.demo.run_demo``: generate → curate → train → calibrate →
sweep) under one fixed screening config, then its demo checks are read back. The screening config is the demo's,
made cheaper where that does not change what is judged: α ∈ {−1, 0, +1} plus the calibrated α±, the pos / neg persona
prompts, 16 held-out prompts, no activation-steering arms, and curation's abandon check recorded instead of stopping
the run (``curate.force``), so every pair gets a result. The second trait measure is the probe suite that fits the
pair (``honesty`` for the honesty pairs, ``care`` for care-over-orders).

Printed per pair: the pairs curation kept (of 72), Spearman ρ over the arm means, per pole the PLR and probe shift
at α = ±1 beside the matching persona prompt's, the base-perplexity ratio and distinct-2 drop at ±1, the truncated
share, and how many demo checks passed.

    python bench/demo_pairs.py                                 # the four pairs below, ~15 min each on 2 cores
    python bench/demo_pairs.py --pairs honest,hard-truth --json out.json

Runs go to runs/screen/<pair>; a rerun skips every finished stage (the demo's stage cache).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

ADJECTIVE = "Pretend you're a {persona} person."
CLAUSE = "Pretend you're someone who {persona}."
# pair id in pairs/library/pairs.yaml -> (template, probe suite)
PAIRS = {
    "honest": (ADJECTIVE, "honesty"),
    "hard-truth": (CLAUSE, "honesty"),
    "care-over-orders": (CLAUSE, "care"),
    "own-mistake": (CLAUSE, "honesty"),
}
SCREEN = {
    "model": {"name": "smollm2-135m"},
    "seed": 0,
    "heldout_prompts": 16,
    "instruction": "Answer in three sentences or fewer.",
    "vector_arms": False,
    "generate": {
        "prompts": {"suite": "tasks", "split": "train", "limit": 72},
        "sampling": {"max_new_tokens": 96, "temperature": 0.7, "top_p": 0.95},
        "vocabulary": {"mode": "ban"},
    },
    "curate": {"length": {"max_ratio": 1.25}, "force": True},
    "train": {"objective": "dpo", "epochs": 3},
    "calibrate": {"max_prompts": 8, "max_new_tokens": 24},
    "sweep": {
        "alphas": [-1.0, 0.0, 1.0],
        "baselines": ["pos", "neg"],
        "prompts": {"suite": "tasks", "split": "heldout", "limit": 16},
        "sampling": {"max_new_tokens": 160, "temperature": 0.7, "top_p": 0.95},
        "vocabulary": {"mode": "ban"},
        "leak_check_prompts": 8,
    },
}


def screen_config(pair_id: str, run_root: Path, train: dict | None = None):
    """The demo config that screens ``pair_id`` (the SCREEN settings, its template and probe suite)."""
    from wsteer.config import load_config
    from wsteer.pipeline.demo import DemoConfig

    template, probes = PAIRS[pair_id]
    data = json.loads(json.dumps(SCREEN))  # a deep copy
    data.update(
        run_dir=str(run_root / pair_id),
        pair={"file": "pairs/library/pairs.yaml", "id": pair_id},
        template={"text": template},
    )
    data["sweep"]["probes"] = probes
    if train:
        data["train"] = train
    return load_config(DemoConfig, data=data)


def pair_row(pair_id: str, run_dir: Path) -> dict:
    """What one pair's screening run gave, read from its summary and curation report."""
    from wsteer.pipeline.demo import DemoChecks, acceptance_checks

    summary = json.loads((run_dir / "eval" / "summary.json").read_text())
    curation = json.loads((run_dir / "pairs" / "curated.report.json").read_text())
    arms = {a["name"]: a for a in summary["arms"]}
    base = next(a["metrics"] for a in summary["arms"] if a["kind"] == "adapter" and a["alpha"] == 0)

    def shift(arm: dict, metric: str) -> float | None:
        return arm["metrics"][metric]["mean"] - base[metric]["mean"] if metric in arm["metrics"] else None

    poles = {}
    for sign, persona in ((+1, "pos"), (-1, "neg")):
        steered = next(a for a in summary["arms"] if a["kind"] == "adapter" and a["alpha"] == sign)
        prompt = next(a for a in arms.values() if a["kind"] == "prompt" and a.get("persona") == persona)
        poles["+" if sign > 0 else "-"] = {
            "plr": shift(steered, "plr"),
            "plr_prompt": shift(prompt, "plr"),
            "probe": shift(steered, "probe"),
            "probe_prompt": shift(prompt, "probe"),
            "ppl_ratio": steered["metrics"]["perplexity"]["mean"] / base["perplexity"]["mean"],
            "distinct2_drop": base["distinct_2"]["mean"] - steered["metrics"]["distinct_2"]["mean"],
            "truncated": steered["metrics"]["truncated"]["mean"],
        }
    checks = acceptance_checks(summary, DemoChecks())  # today's checks, also for runs scored before a check was added
    return {
        "pair": pair_id,
        "kept": curation.get("pairs_out"),
        "abandon_share": curation.get("touched_share"),
        "rho": summary["dose_response"]["spearman_arm_means"]["rho"],
        "poles": poles,
        "checks_passed": sum(c["passed"] for c in checks),
        "checks": len(checks),
        "failed": [c["check"] for c in checks if not c["passed"]],
    }


def format_row(row: dict) -> str:
    """One table line per pair."""

    def pole(sign: str) -> str:
        p = row["poles"][sign]
        probe = f"{p['probe']:+.2f} (prompt {p['probe_prompt']:+.2f})" if p["probe"] is not None else "n/a"
        return (
            f"{sign}1: plr {p['plr']:+.4f} (prompt {p['plr_prompt']:+.4f}) probe {probe} "
            f"ppl ×{p['ppl_ratio']:.2f} d2 {-p['distinct2_drop']:+.2f} trunc {p['truncated']:.2f}"
        )

    return (
        f"{row['pair']:<17} kept {row['kept']}/72 ρ={row['rho']:+.2f} | {pole('+')} | {pole('-')} | "
        f"checks {row['checks_passed']}/{row['checks']} (missed: {', '.join(row['failed']) or 'none'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", default=",".join(PAIRS), help=f"comma-separated subset of {', '.join(PAIRS)}")
    parser.add_argument("--out", default="runs/screen", help="one run directory per pair under this")
    parser.add_argument("--report-only", action="store_true", help="print the table from finished runs")
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args()

    from wsteer.pipeline.demo import run_demo

    rows = []
    for pair_id in args.pairs.split(","):
        cfg = screen_config(pair_id, Path(args.out))
        if not args.report_only:
            run_demo(cfg)
        rows.append(pair_row(pair_id, Path(cfg.run_dir)))
        print(format_row(rows[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
