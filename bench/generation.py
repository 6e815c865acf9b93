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
import os
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


def main(argv: list[str] | None = None) -> int:
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
    args = parser.parse_args(argv)

    import torch

    from bench.common import machine_context
    from wsteer.generation import HFBackend, SamplingConfig
    from wsteer.models import load_model, load_tokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    machine = machine_context(torch.get_num_threads())
    load = machine["load_average"]
    print(
        f"machine: {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (a load above the CPU count means the numbers are contended)"
    )
    tokenizer, model = load_tokenizer(args.model), load_model(args.model)
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature)
    requests = build_requests(args.rows, "Pretend you're a {persona} person.", "honest", "dishonest")
    HFBackend(model, tokenizer, batch_size=2).generate(requests[:2], SamplingConfig(max_new_tokens=4))  # warm-up

    batched_s, batched_tokens, batched = timed(
        HFBackend(model, tokenizer, batch_size=args.batch_size), requests, sampling
    )
    single_s, single_tokens, single = timed(HFBackend(model, tokenizer, batch_size=1), requests, sampling)
    same = sum(a.token_ids == b.token_ids for a, b in zip(batched, single))
    sort_s, sort_tokens = None, 0
    if args.temperature > 0 and not args.skip_topp_baseline:
        with full_sort_top_p():
            sort_s, sort_tokens, _ = timed(HFBackend(model, tokenizer, batch_size=args.batch_size), requests, sampling)

    batched_rate, single_rate = batched_tokens / batched_s, single_tokens / single_s
    print(
        f"model {args.model}, {len(requests)} rows, max_new_tokens {args.max_new_tokens}, "
        f"temperature {args.temperature}"
    )
    print(f"one at a time : {single_tokens:6d} tokens in {single_s:7.1f} s = {single_rate:7.1f} tokens/s")
    print(
        f"batch {args.batch_size:<8d}: {batched_tokens:6d} tokens in {batched_s:7.1f} s = {batched_rate:7.1f} tokens/s"
    )
    if sort_s is not None:
        sort_rate = sort_tokens / sort_s
        print(
            f"batch {args.batch_size}, transformers' full-sort top-p: {sort_tokens} tokens in {sort_s:.1f} s = "
            f"{sort_rate:.1f} tokens/s (NucleusFilter is {batched_rate / sort_rate:.2f}x faster)"
        )
    print(f"ratio batched / one-at-a-time: {batched_rate / single_rate:.2f}x  (goal >= 4x at batch 16 on 2 cores)")
    print(f"identical answers in both arms: {same}/{len(requests)} (seeded per row; padding can flip near-ties)")
    if args.json:
        figures = {
            "rows": len(requests),
            "batched": {"tokens": batched_tokens, "seconds": batched_s, "tokens_per_s": batched_rate},
            "one_at_a_time": {"tokens": single_tokens, "seconds": single_s, "tokens_per_s": single_rate},
            "batched_full_sort_top_p": None
            if sort_s is None
            else {"tokens": sort_tokens, "seconds": sort_s, "tokens_per_s": sort_rate},
            "identical_answers": same,
        }
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
