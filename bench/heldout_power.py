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

A sweep with ``samples_per_prompt: N`` answers each prompt N times (sample 0 is the demo's own answer); ``--samples
0,1,2,all`` reads the checks on each sample alone — replicates of the demo's verdict on the same adapter and
prompts — and on all of them pooled:

    wsteer eval sweep --config runs/demo/eval/config.yaml runs/demo/adapter out_dir=runs/replicates \\
        samples_per_prompt=4 'baselines=[]' leak_check_prompts=0 kl=false vector.pairs=null probes=null \\
        heldout_pairs=null
    python bench/heldout_power.py runs/replicates/generations.jsonl --sizes 16 --samples 0,1,2,3,all
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def arm_table(rows: list[dict], prompt_ids: list[str], samples: list[int] | None = None) -> list[dict]:
    """Per adapter arm (α ≠ 0) on ``prompt_ids`` × ``samples`` (default: sample 0): the checks' quantities against
    α = 0 on the same prompts and samples (the same row seeds)."""
    by_arm: dict[float, dict[tuple[str, int], dict]] = defaultdict(dict)
    for row in rows:
        if row["kind"] == "adapter" and row.get("filtered", True):
            by_arm[row["alpha"]][(row["prompt_id"], row.get("sample", 0))] = row
    keys = [(p, s) for s in (samples or [0]) for p in prompt_ids]
    base = by_arm[0.0]
    table = []
    for alpha in sorted(a for a in by_arm if a != 0.0):
        arm = by_arm[alpha]
        drops = [arm[k]["distinct_2"] - base[k]["distinct_2"] for k in keys]
        table.append(
            {
                "alpha": alpha,
                "distinct2_drop": statistics.mean(drops),
                "distinct2_se": statistics.stdev(drops) / len(drops) ** 0.5,
                "perplexity_ratio": statistics.mean(arm[k]["perplexity"] for k in keys)
                / statistics.mean(base[k]["perplexity"] for k in keys),
                "length_ratio": statistics.mean(arm[k]["tokens"] for k in keys)
                / statistics.mean(base[k]["tokens"] for k in keys),
                "truncated": statistics.mean(float(arm[k]["truncated"]) for k in keys),
            }
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("generations", help="a sweep's generations.jsonl over at least max(--sizes) held-out prompts")
    parser.add_argument("--sizes", default="16,20,24,28,32", help="prompt counts (the sweep's prompts.limit values)")
    parser.add_argument(
        "--samples", default="0", help="comma-separated sample indices, each read alone; 'all' pools every sample"
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from wsteer.prompts import PromptSource, resolve_prompts

    rows = [json.loads(line) for line in Path(args.generations).read_text().splitlines() if line.strip()]
    answered = {r["prompt_id"] for r in rows}
    every_sample = sorted({r.get("sample", 0) for r in rows})
    results = {}
    print("prompts  sample  α     distinct-2 drop ± se   ppl ratio  length ratio  truncated")
    for size in (int(s) for s in args.sizes.split(",")):
        prompt_ids = [p.id for p in resolve_prompts(PromptSource(split="heldout", limit=size))]
        missing = sorted(set(prompt_ids) - answered)
        if missing:
            raise SystemExit(f"{args.generations} has no answers to {missing}: sweep with prompts.limit ≥ {size}")
        for sample in args.samples.split(","):
            samples = every_sample if sample == "all" else [int(sample)]
            table = arm_table(rows, prompt_ids, samples)
            results[f"{size}/{sample}"] = table
            for arm in table:
                print(
                    f"{size:>7}  {sample:>6}  {arm['alpha']:+.1f}  {arm['distinct2_drop']:+.3f} ± "
                    f"{arm['distinct2_se']:.3f}         ×{arm['perplexity_ratio']:.2f}      "
                    f"×{arm['length_ratio']:.2f}         {arm['truncated']:.2f}"
                )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
