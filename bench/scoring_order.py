"""Bench: scoring a sweep's answers in the order they were planned vs shortest first.

Both arms score the same answers with :func:`wsteer.eval.scoring.score_answers` (PLR, base perplexity and KL: four
teacher-forced forwards per answer), the same model and batch size; only the order the rows are batched in differs:

  plan order     prompt by prompt, every arm's answer to a prompt together (how the sweep plans its rows)
  shortest first :func:`wsteer.eval.scoring.length_sorted`, what the sweep and A/B do now

Each batch is right-padded to its longest prompt + answer, so in plan order a batch of 16 pads to whichever of its
answers ran to the cap. The answers are a finished sweep's (``--generations``, e.g. the demo's) or, without one,
filler answers whose lengths are drawn (seeded) from 8 to 160 tokens. Printed: seconds per answer for each arm,
the speedup (plan order / shortest first), the padded positions each forms, and the largest difference between
the two arms' scores (they must agree to float rounding).

    python bench/scoring_order.py                                             # filler answers, 64 rows
    python bench/scoring_order.py --generations runs/demo/eval/generations.jsonl --answers 144

The machine's load average is printed first; rerun on a quiet machine for figures you quote.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

PAIR = {"pos": "honest", "neg": "dishonest", "template": "Pretend you're a {persona} person."}


def filler_answers(tokenizer, n: int, seed: int) -> list[dict]:
    """``n`` answers to held-out prompts, 4 arms per prompt as a sweep plans them, lengths drawn in [8, 160]."""
    from bench.common import filler_tokens
    from wsteer.prompts import PromptSource, resolve_prompts

    rng = random.Random(seed)
    prompts = resolve_prompts(PromptSource(split="heldout"))
    return [
        {
            "prompt": prompts[(i // 4) % len(prompts)].prompt,
            "text": tokenizer.decode(filler_tokens(tokenizer, rng.randint(8, 160))),
        }
        for i in range(n)
    ]


def sweep_answers(path: Path, n: int) -> list[dict]:
    """The first ``n`` filtered answers of a sweep's generations.jsonl, in the sweep's own (plan) order."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{"prompt": r["prompt"], "text": r["text"]} for r in rows if r.get("filtered", True)][:n]


def padded_positions(rows: list[dict], batch_size: int) -> int:
    """Positions the batches of ``rows`` (in this order) hold after right-padding: Σ batch size × longest row."""
    lengths = [r["positions"] for r in rows]
    return sum(
        len(lengths[i : i + batch_size]) * max(lengths[i : i + batch_size]) for i in range(0, len(rows), batch_size)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--generations", default=None, help="a sweep's generations.jsonl (default: filler answers)")
    parser.add_argument("--answers", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from wsteer.eval.scoring import length_sorted, score_answers

    from bench.common import start_machine
    from wsteer.chat import build_messages, encode_completion, encode_prompt
    from wsteer.models import load_model, load_tokenizer

    context = start_machine()
    model, tokenizer = load_model(args.model), load_tokenizer(args.model)
    model.eval()
    if args.generations:
        rows = sweep_answers(Path(args.generations), args.answers)
    else:
        rows = filler_answers(tokenizer, args.answers, args.seed)
    for row in rows:
        row["messages"] = build_messages(row["prompt"])
        row["tokens"] = len(encode_completion(tokenizer, row["text"]))
        row["positions"] = len(encode_prompt(tokenizer, row["messages"])) + row["tokens"]  # prompt + answer
    arms = {"plan order": list(rows), "shortest first": length_sorted(rows)}
    seconds, scores, padded = {}, {}, {}
    for name, ordered in arms.items():
        started = time.perf_counter()
        records = score_answers(
            model, lambda a, b: contextlib.nullcontext(), model, tokenizer, ordered, PAIR, [], args.batch_size
        )
        seconds[name] = time.perf_counter() - started
        scores[name] = {id(row): record for row, record in zip(ordered, records)}
        padded[name] = padded_positions(ordered, args.batch_size)
    diff = max(
        abs(scores["plan order"][id(row)][m] - scores["shortest first"][id(row)][m])
        for row in rows
        for m in ("plr", "perplexity", "kl")
        if scores["plan order"][id(row)][m] == scores["plan order"][id(row)][m]  # skip NaN (empty answers)
    )
    mean_tokens = sum(r["tokens"] for r in rows) / len(rows)
    print(f"{len(rows)} answers, {mean_tokens:.0f} tokens on average, batch {args.batch_size}")
    for name in arms:
        print(f"  {name:<15} {seconds[name] / len(rows):.3f} s/answer, {padded[name]} padded positions")
    speedup = seconds["plan order"] / seconds["shortest first"]
    print(f"speedup (plan order / shortest first): ×{speedup:.2f}; max |Δ score| {diff:.2e}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"machine": context, "seconds": seconds, "padded": padded, "speedup": speedup, "max_abs_diff": diff},
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
