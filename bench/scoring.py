"""Bench: the scoring kernel's LM head over the completion spans only vs over every position.

Both arms score the same answers after the same chat prompts (system persona + user prompt, as PLR does) with the
same model and batch size, on the right-padded batches :func:`wsteer.scoring.teacher_forced_log_softmax` builds:

  spans only     ``teacher_forced_log_softmax`` (``logits_to_keep`` = earliest span start .. latest span end)
  every position the same forward without ``logits_to_keep`` (the [B, T, V] logits), then the same slices

Printed: seconds per answer for each arm and the speedup (every position / spans only), and the largest absolute
difference of the log-probs the two return (they must agree to float rounding).

    python bench/scoring.py                       # smollm2-135m, 32 answers × 96 tokens, batch 16
    python bench/scoring.py --answers 16 --answer-tokens 160 --json out.json

The machine's load average is printed first; rerun on a quiet machine for figures you quote.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def every_position_log_softmax(model, pad_token_id, sequences, spans):
    """The baseline: full [B, T, V] logits, sliced afterwards (what the kernel did before logits_to_keep)."""
    import torch

    from wsteer.chat import pad_batch

    input_ids, attention_mask = pad_batch(sequences, pad_token_id, side="right")  # [B, T]
    with torch.inference_mode():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits  # [B, T, V]
        return [torch.log_softmax(logits[row, f : f + c].float(), dim=-1) for row, (f, c) in enumerate(spans)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--answers", type=int, default=32)
    parser.add_argument("--answer-tokens", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per arm (alternating); best is kept")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from bench.common import filler_tokens, start_machine
    from wsteer.chat import encode_prompt, persona_messages
    from wsteer.models import load_model, load_tokenizer
    from wsteer.prompts import PromptSource, resolve_prompts
    from wsteer.scoring import completion_span, teacher_forced_log_softmax

    context = start_machine()
    model, tokenizer = load_model(args.model), load_tokenizer(args.model)
    model.eval()
    prompts = resolve_prompts(PromptSource(split="heldout", limit=args.answers))
    answer = filler_tokens(tokenizer, args.answer_tokens)
    rows = []
    for prompt in prompts:
        ids = encode_prompt(tokenizer, persona_messages(prompt.prompt, "Pretend you're a {persona} person.", "honest"))
        rows.append((ids + answer, completion_span(ids, len(answer))))
    batches = [rows[i : i + args.batch_size] for i in range(0, len(rows), args.batch_size)]
    arms = {
        "spans only": lambda seqs, spans: teacher_forced_log_softmax(model, tokenizer.pad_token_id, seqs, spans),
        "every position": lambda seqs, spans: every_position_log_softmax(model, tokenizer.pad_token_id, seqs, spans),
    }
    best = {name: float("inf") for name in arms}
    outputs = {}
    for _ in range(args.repeats):
        for name, run in arms.items():
            started = time.perf_counter()
            outputs[name] = [lp for batch in batches for lp in run([s for s, _ in batch], [sp for _, sp in batch])]
            best[name] = min(best[name], time.perf_counter() - started)
    diff = max(float((a - b).abs().max()) for a, b in zip(outputs["spans only"], outputs["every position"]))
    prompt_tokens = sum(sp[0] + 1 for _, sp in rows) / len(rows)
    print(
        f"{len(rows)} answers × {args.answer_tokens} tokens after {prompt_tokens:.0f} prompt tokens, "
        f"batch {args.batch_size}"
    )
    for name, seconds in best.items():
        print(f"  {name:<15} {seconds / len(rows):.3f} s/answer")
    speedup = best["every position"] / best["spans only"]
    print(f"speedup (every position / spans only): ×{speedup:.2f}; max |Δ log-prob| {diff:.2e}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": context, "seconds": best, "speedup": speedup, "max_abs_diff": diff}, indent=1)
        )


if __name__ == "__main__":
    main()
