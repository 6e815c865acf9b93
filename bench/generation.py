"""Bench: batched pair generation vs one prompt at a time, tokens/s on the same rows, printed as a ratio.

The workload is the real one of `wsteer pairs generate`: task prompts from the built-in suite under the pos and neg
persona system prompts, seeded sampling, same seed on both sides. Both arms answer exactly the same rows with the
same seeds through ``wsteer.generation.HFBackend`` — batch_size=B vs batch_size=1 — and count only the tokens each
answer really has (up to its EOS), so padding work in the batched arm is not counted as output.

    python bench/generation.py                      # smollm2-135m, 16 rows, batch 16, 64 new tokens
    python bench/generation.py --threads 2 --rows 32 --batch-size 16
    python bench/generation.py --json out.json      # also write the headline rows (bench/common.py) for run_all

A third arm repeats the batched run with transformers' TopPLogitsWarper instead of wsteer's NucleusFilter, to show
what the exact top-k-candidates nucleus saves (skip it with --skip-topp-baseline).

The machine's load average is printed first: on a shared machine the absolute numbers (and, less, the ratio) move
with whatever else is running; rerun on a quiet machine for figures you quote.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def build_requests(rows: int, template: str, pos: str, neg: str):
    """``rows`` requests: consecutive (pos, neg) rows per prompt sharing a seed, as `pairs generate` builds them."""
    from wsteer.chat import persona_messages
    from wsteer.generation import GenerationRequest
    from wsteer.prompts import load_prompts, select_prompts

    prompts = select_prompts(load_prompts("tasks"), limit=(rows + 1) // 2)
    requests = []
    for index, prompt in enumerate(prompts):
        for persona in (pos, neg):
            requests.append(GenerationRequest(persona_messages(prompt.prompt, template, persona), seed=index))
    return requests[:rows]


def timed(backend, requests, sampling) -> tuple[float, int, list]:
    """(seconds, real generated tokens, generations)."""
    started = time.perf_counter()
    out = backend.generate(requests, sampling)
    seconds = time.perf_counter() - started
    return seconds, sum(len(g.token_ids) for g in out), out


@contextlib.contextmanager
def full_sort_top_p():
    """Swap wsteer's NucleusFilter for transformers' TopPLogitsWarper (the full-vocabulary sort) for one arm."""
    from transformers import TopPLogitsWarper

    from wsteer import generation

    original = generation.NucleusFilter
    generation.NucleusFilter = lambda top_p: TopPLogitsWarper(top_p)
    try:
        yield
    finally:
        generation.NucleusFilter = original


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The bench's command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--rows", type=int, default=16, help="rows answered by both arms")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument(
        "--skip-topp-baseline",
        action="store_true",
        help="skip the third arm (batched with transformers' full-sort top-p)",
    )
    parser.add_argument("--json", type=Path, help="also write the headline rows and figures here (for run_all)")
    return parser.parse_args(argv)


def _rate(tokens: int, seconds: float) -> dict:
    return {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}


def measure(args: argparse.Namespace) -> dict:
    """Run the arms on the same rows; the figures (tokens, seconds, tokens/s per arm, identical answers)."""
    from wsteer.generation import HFBackend, SamplingConfig
    from wsteer.models import load_model, load_tokenizer

    tokenizer, model = load_tokenizer(args.model), load_model(args.model)
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature)
    requests = build_requests(args.rows, "Pretend you're a {persona} person.", "honest", "dishonest")
    HFBackend(model, tokenizer, batch_size=2).generate(requests[:2], SamplingConfig(max_new_tokens=4))  # warm-up

    batched_s, batched_tokens, batched = timed(
        HFBackend(model, tokenizer, batch_size=args.batch_size), requests, sampling
    )
    single_s, single_tokens, single = timed(HFBackend(model, tokenizer, batch_size=1), requests, sampling)
    sort = None
    if args.temperature > 0 and not args.skip_topp_baseline:
        with full_sort_top_p():
            sort_s, sort_tokens, _ = timed(HFBackend(model, tokenizer, batch_size=args.batch_size), requests, sampling)
        sort = _rate(sort_tokens, sort_s)
    return {
        "rows": len(requests),
        "batched": _rate(batched_tokens, batched_s),
        "one_at_a_time": _rate(single_tokens, single_s),
        "batched_full_sort_top_p": sort,
        "identical_answers": sum(a.token_ids == b.token_ids for a, b in zip(batched, single)),
    }


def print_figures(args: argparse.Namespace, figures: dict) -> None:
    """The human-readable result."""
    batched, single, sort = figures["batched"], figures["one_at_a_time"], figures["batched_full_sort_top_p"]
    batched_rate, single_rate = batched["tokens_per_s"], single["tokens_per_s"]
    print(
        f"model {args.model}, {figures['rows']} rows, max_new_tokens {args.max_new_tokens}, "
        f"temperature {args.temperature}"
    )
    print(f"one at a time : {single['tokens']:6d} tokens in {single['seconds']:7.1f} s = {single_rate:7.1f} tokens/s")
    print(
        f"batch {args.batch_size:<8d}: {batched['tokens']:6d} tokens in {batched['seconds']:7.1f} s = "
        f"{batched_rate:7.1f} tokens/s"
    )
    if sort is not None:
        print(
            f"batch {args.batch_size}, transformers' full-sort top-p: {sort['tokens']} tokens in "
            f"{sort['seconds']:.1f} s = {sort['tokens_per_s']:.1f} tokens/s (NucleusFilter is "
            f"{batched_rate / sort['tokens_per_s']:.2f}x faster)"
        )
    print(f"ratio batched / one-at-a-time: {batched_rate / single_rate:.2f}x  (goal >= 4x at batch 16 on 2 cores)")
    print(
        f"identical answers in both arms: {figures['identical_answers']}/{figures['rows']} "
        "(seeded per row; padding can flip near-ties)"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the bench, print it, and write ``--json`` when asked."""
    from bench.common import start_machine

    args = parse_args(argv)
    machine = start_machine(args.threads)
    figures = measure(args)
    print_figures(args, figures)
    if args.json:
        write_json_result(args, machine, figures, argv)
        print(f"wrote {args.json}")
    return 0


def write_json_result(args: argparse.Namespace, machine: dict, figures: dict, argv: list[str] | None) -> None:
    """The --json file: headline rows (batched vs one at a time; NucleusFilter vs full sort) and the figures."""
    from bench.common import headline_row, reproduce_command, write_result

    command = reproduce_command(argv)
    batched_rate = figures["batched"]["tokens_per_s"]
    single_rate = figures["one_at_a_time"]["tokens_per_s"]
    ratio = batched_rate / single_rate
    headline = [
        headline_row(
            "generation",
            f"generation tokens/s, batch {args.batch_size} vs one at a time",
            f"{batched_rate:.1f} tokens/s",
            f"{single_rate:.1f} tokens/s",
            ratio,
            command,
            goal="≥ 4× at batch 16 on 2 cores",
            met=ratio >= 4,
        )
    ]
    if figures["batched_full_sort_top_p"] is not None:
        sort_rate = figures["batched_full_sort_top_p"]["tokens_per_s"]
        headline.append(
            headline_row(
                "generation",
                f"batch {args.batch_size} tokens/s, wsteer's NucleusFilter vs transformers' top-p",
                f"{batched_rate:.1f} tokens/s",
                f"{sort_rate:.1f} tokens/s",
                batched_rate / sort_rate,
                command,
            )
        )
    settings = {key: value for key, value in vars(args).items() if key != "json"}
    write_result(args.json, headline, machine, settings=settings, figures=figures)


if __name__ == "__main__":
    sys.exit(main())
