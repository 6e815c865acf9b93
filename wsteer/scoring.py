"""Scoring texts with a model: per-token log-probabilities of a completion after a conversation.

The persona log-likelihood ratio (PLR) is the judge-free trait score used by the template screen and by eval:
how much more likely the base model finds a text when told to be the pos persona than the neg persona,
    PLR(text) = mean_t log p(text_t | pos system prompt, prompt, text_<t)
              - mean_t log p(text_t | neg system prompt, prompt, text_<t).
The completion is tokenised once and appended to each rendered prompt, so both sides score identical tokens.
"""

from __future__ import annotations

import math
from typing import Sequence

from wsteer.chat import Messages, encode_completion, encode_prompt, pad_batch, persona_messages


def completion_logprobs(
    model, tokenizer, conversations: Sequence[Messages], completions: Sequence[str], batch_size: int = 16
) -> list[list[float]]:
    """Log-probability of each completion token given its conversation (teacher forcing).

    Returns one list per row with one float per completion token (empty for an empty completion).
    """
    import torch

    if len(conversations) != len(completions):
        raise ValueError(f"{len(conversations)} conversations but {len(completions)} completions")
    device = next(model.parameters()).device
    rows = []
    for messages, text in zip(conversations, completions):
        prompt_ids = encode_prompt(tokenizer, messages)
        rows.append((prompt_ids, encode_completion(tokenizer, text)))
    results: list[list[float]] = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        seqs = [p + c for p, c in chunk]
        input_ids, attention_mask = pad_batch(seqs, tokenizer.pad_token_id, side="right")  # [B, T]
        with torch.inference_mode():
            logits = model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).logits
        logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # [B, T-1, V]: predicts token t+1
        targets = input_ids[:, 1:].to(device)  # [B, T-1]
        token_logp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1).cpu()  # [B, T-1]
        for row, (prompt_ids, completion_ids) in enumerate(chunk):
            first = len(prompt_ids) - 1  # logit position that predicts the first completion token
            results.append(token_logp[row, first : first + len(completion_ids)].tolist())
    return results


def mean_logprob(values: Sequence[float]) -> float:
    """Mean of per-token log-probs (NaN for an empty completion)."""
    return sum(values) / len(values) if values else math.nan


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
    return [
        math.exp(-mean_logprob(lp)) if lp else math.nan
        for lp in completion_logprobs(model, tokenizer, convs, texts, batch_size)
    ]


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
