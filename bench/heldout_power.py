"""Bench: how much the demo's coherence and length checks move with the held-out prompts they read.

The demo judges each pole against α = 0 on 16 held-out prompts (what fits in 20 min on 2 cores). This reads a sweep
of the same adapter over more held-out prompts and prints, for nested prompt sets (the ``limit`` = 16, 20, …
selections the sweep itself makes, balanced over domains), each adapter arm's distinct-2 drop with its paired
standard error, base-perplexity ratio, length ratio and truncated share: whether a check's verdict is the adapter's
or the prompt set's.

    wsteer eval sweep --config runs/demo/eval/config.yaml runs/demo/adapter out_dir=runs/heldout32 \\
        prompts.limit=32 'baselines=[]' leak_check_prompts=0 kl=false vector.pairs=null probes=null \\
        heldout_pairs=null                                     # ~7 min on 2 cores
    python bench/heldout_power.py runs/heldout32/generations.jsonl --sizes 16,20,24,28,32
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def arm_table(rows: list[dict], prompt_ids: list[str]) -> list[dict]:
    """Per adapter arm (α ≠ 0) on ``prompt_ids``: the checks' quantities against α = 0 on the same prompts."""
    by_arm: dict[float, dict[str, dict]] = defaultdict(dict)
    for row in rows:
        if row["kind"] == "adapter" and row.get("filtered", True):
            by_arm[row["alpha"]][row["prompt_id"]] = row
    base = by_arm[0.0]
    table = []
    for alpha in sorted(a for a in by_arm if a != 0.0):
        arm = by_arm[alpha]
        drops = [arm[p]["distinct_2"] - base[p]["distinct_2"] for p in prompt_ids]
        table.append(
            {
                "alpha": alpha,
                "distinct2_drop": statistics.mean(drops),
                "distinct2_se": statistics.stdev(drops) / len(drops) ** 0.5,
                "perplexity_ratio": statistics.mean(arm[p]["perplexity"] for p in prompt_ids)
                / statistics.mean(base[p]["perplexity"] for p in prompt_ids),
                "length_ratio": statistics.mean(arm[p]["tokens"] for p in prompt_ids)
                / statistics.mean(base[p]["tokens"] for p in prompt_ids),
                "truncated": statistics.mean(float(arm[p]["truncated"]) for p in prompt_ids),
            }
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("generations", help="a sweep's generations.jsonl over at least max(--sizes) held-out prompts")
    parser.add_argument("--sizes", default="16,20,24,28,32", help="prompt counts (the sweep's prompts.limit values)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from wsteer.prompts import PromptSource, resolve_prompts

    rows = [json.loads(line) for line in Path(args.generations).read_text().splitlines() if line.strip()]
    answered = {r["prompt_id"] for r in rows}
    results = {}
    print("prompts  α     distinct-2 drop ± se   ppl ratio  length ratio  truncated")
    for size in (int(s) for s in args.sizes.split(",")):
        prompt_ids = [p.id for p in resolve_prompts(PromptSource(split="heldout", limit=size))]
        missing = sorted(set(prompt_ids) - answered)
        if missing:
            raise SystemExit(f"{args.generations} has no answers to {missing}: sweep with prompts.limit ≥ {size}")
        results[size] = arm_table(rows, prompt_ids)
        for arm in results[size]:
            print(
                f"{size:>7}  {arm['alpha']:+.1f}  {arm['distinct2_drop']:+.3f} ± {arm['distinct2_se']:.3f}"
                f"         ×{arm['perplexity_ratio']:.2f}      ×{arm['length_ratio']:.2f}         "
                f"{arm['truncated']:.2f}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
