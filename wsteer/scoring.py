"""Scoring texts with a model: the one teacher-forced kernel behind every log-prob, KL and perplexity.

The kernel (used by eval, calibration, the training metrics and the template screen):

* :func:`teacher_forced_log_softmax` — one forward of a right-padded batch, fp32 log-softmax [n, V] at the logit
  positions that predict each row's completion tokens (the logit at index j predicts token j + 1);
* :func:`target_logprobs` — the log-prob of each actual token at those positions;
* :func:`token_kl` — the per-position KL(p ‖ q) = Σ_v p(v) (log p(v) − log q(v)) of two such distributions;
* :func:`kl_and_nll` — per-token KL(arm ‖ base) and the base model's NLL of the tokens, the pair every
  "how far did steering move the model, and is the text still fluent" measurement reads;
* :func:`perplexity_of` — exp of the mean NLL.

The persona log-likelihood ratio (PLR) is the judge-free trait score used by the template screen and by eval:
how much more likely the base model finds a text when told to be the pos persona than the neg persona,
    PLR(text) = mean_t log p(text_t | pos system prompt, prompt, text_<t)
              - mean_t log p(text_t | neg system prompt, prompt, text_<t).
The completion is tokenised once and appended to each rendered prompt, so both sides score identical tokens.
"""

from __future__ import annotations

import contextlib
import math
from contextlib import AbstractContextManager
from typing import Sequence

from wsteer.chat import Messages, encode_completion, encode_prompt, pad_batch, persona_messages


# --------------------------------------------------------------------------------------------- the kernel
def completion_span(prompt_ids: Sequence[int], n_tokens: int) -> tuple[int, int]:
    """(first logit index, count) of the positions that predict ``n_tokens`` tokens following ``prompt_ids``."""
    # the logit at index j predicts token j + 1, so the first completion token comes from index len(prompt) - 1
    return len(prompt_ids) - 1, n_tokens


def teacher_forced_log_softmax(
    model,
    pad_token_id: int,
    sequences: Sequence[Sequence[int]],
    spans: Sequence[tuple[int, int]],
    context: AbstractContextManager | None = None,
) -> list:
    """One teacher-forced forward of ``sequences`` (right-padded, one batch) under ``context``.

    Returns, per row, the fp32 log-softmax [count, V] at logit positions ``first .. first + count - 1`` of its
    ``(first, count)`` span (on the model's device). Only those rows of the logits are normalised.
    """
    import torch

    device = next(model.parameters()).device
    input_ids, attention_mask = pad_batch(sequences, pad_token_id, side="right")  # [B, T]
    # The LM head runs only from the earliest span start to the latest span end (transformers' public
    # `logits_to_keep`): the prompt positions before it need no [V] logits. It saves the [B, T_prompt, V] logits'
    # memory; time only where prompts are long (×1.02 on the demo's 42-token prompts, bench/scoring.py).
    low = min((first for first, count in spans if count), default=0)
    high = max((first + count for first, count in spans if count), default=low)
    keep = torch.arange(low, max(high, low + 1), device=device)  # [K]
    with torch.inference_mode(), context or contextlib.nullcontext():
        logits = model(
            input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), logits_to_keep=keep
        ).logits  # [B, K, V]
        return [
            torch.log_softmax(logits[row, first - low : first - low + count].float(), dim=-1)  # [count, V]
            for row, (first, count) in enumerate(spans)
        ]


def target_logprobs(log_probs, targets: Sequence[int]):
    """Log-prob [len(targets)] of each target token under the first ``len(targets)`` rows of ``log_probs`` [n, V]."""
    import torch

    index = torch.tensor(list(targets), dtype=torch.long, device=log_probs.device)  # [m]
    return log_probs[: len(index)].gather(-1, index.unsqueeze(-1)).squeeze(-1)  # [m]


def token_kl(log_p, log_q):
    """Per-position KL(p ‖ q) [...] of two log-distributions [..., V] (differentiable in ``log_p``)."""
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def kl_and_nll(log_arm, log_base, targets: Sequence[int]):
    """Per-token KL(arm ‖ base) [n] (clamped at 0: fp rounding can dip below) at every position of ``log_arm``
    [n, V], and the base model's NLL [len(targets)] of ``targets`` (n may exceed it by an EOS position)."""
    kl = token_kl(log_arm, log_base).clamp_min(0.0)  # [n]
    return kl, -target_logprobs(log_base, targets)


def perplexity_of(nlls: Sequence[float]) -> float:
    """exp of the mean NLL (NaN when there are no tokens, inf past float range: an answer the base model all but
    rules out, e.g. forced tokens, must score as incoherent rather than crash the sweep)."""
    if not len(nlls):
        return math.nan
    mean = sum(nlls) / len(nlls)
    return math.exp(mean) if mean < 709.0 else math.inf


def mean_logprob(values: Sequence[float]) -> float:
    """Mean of per-token log-probs (NaN for an empty completion)."""
    return sum(values) / len(values) if values else math.nan


# --------------------------------------------------------------------------------------------- completions
def completion_log_softmax(
    model,
    tokenizer,
    conversations: Sequence[Messages],
    completions: Sequence[list[int]],
    context: AbstractContextManager | None = None,
) -> list:
    """Per row, the log-softmax [n_i, V] at the positions that predict each completion's token ids after its
    chat-formatted conversation (one batch, under ``context``)."""
    prompts = [encode_prompt(tokenizer, messages) for messages in conversations]
    sequences = [p + c for p, c in zip(prompts, completions)]
    spans = [completion_span(p, len(c)) for p, c in zip(prompts, completions)]
    return teacher_forced_log_softmax(model, tokenizer.pad_token_id, sequences, spans, context)


def completion_logprobs(
    model, tokenizer, conversations: Sequence[Messages], completions: Sequence[str], batch_size: int = 16
) -> list[list[float]]:
    """Log-probability of each completion token given its conversation (teacher forcing).

    Returns one list per row with one float per completion token (empty for an empty completion).
    """
    if len(conversations) != len(completions):
        raise ValueError(f"{len(conversations)} conversations but {len(completions)} completions")
    results: list[list[float]] = []
    for start in range(0, len(completions), batch_size):
        ids = [encode_completion(tokenizer, t) for t in completions[start : start + batch_size]]
        log_probs = completion_log_softmax(model, tokenizer, conversations[start : start + batch_size], ids)
        results += [target_logprobs(lp, c).cpu().tolist() for lp, c in zip(log_probs, ids)]
    return results


def persona_log_likelihood_ratio(
    model,
    tokenizer,
    prompts: Sequence[str],
    texts: Sequence[str],
    template: str,
    pos: str,
    neg: str,
    batch_size: int = 16,
) -> list[float]:
    """PLR of each text (answer to the matching prompt): mean logp under pos persona minus under neg persona.

    Positive values mean the text reads more like the pos persona. NaN for empty texts.
    """
    pos_convs = [persona_messages(p, template, pos) for p in prompts]
    neg_convs = [persona_messages(p, template, neg) for p in prompts]
    pos_lp = completion_logprobs(model, tokenizer, pos_convs, texts, batch_size)
    neg_lp = completion_logprobs(model, tokenizer, neg_convs, texts, batch_size)
    return [mean_logprob(a) - mean_logprob(b) for a, b in zip(pos_lp, neg_lp)]


def perplexity(
    model, tokenizer, prompts: Sequence[str], texts: Sequence[str], system: str | None = None, batch_size: int = 16
) -> list[float]:
    """Per-text perplexity under ``model`` (exp of minus the mean token log-prob), with an optional system."""
    convs = [persona_messages(p, "{persona}", system) if system else persona_messages(p, None, None) for p in prompts]
    return [perplexity_of([-v for v in lp]) for lp in completion_logprobs(model, tokenizer, convs, texts, batch_size)]


def preference_margins(
    model,
    tokenizer,
    prompts: Sequence[str],
    chosen: Sequence[str],
    rejected: Sequence[str],
    system: str | None = None,
    batch_size: int = 16,
) -> list[float]:
    """Per pair: mean token logp of ``chosen`` minus that of ``rejected``, both after the same prompt.

    Prompts carry no persona (optionally a fixed ``system``), as in training. Length-normalised, so a length
    difference between the sides does not masquerade as preference. Steering toward the pos pole should raise
    it relative to the base model; steering toward neg should lower it.
    """
    convs = [persona_messages(p, "{persona}", system) if system else persona_messages(p, None, None) for p in prompts]
    both = completion_logprobs(model, tokenizer, convs + convs, list(chosen) + list(rejected), batch_size)
    n = len(prompts)
    return [mean_logprob(c) - mean_logprob(r) for c, r in zip(both[:n], both[n:])]
