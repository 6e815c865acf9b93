"""Per-generation scores that need a model: trait (PLR), coherence (base perplexity) and KL to the base.

All three are measured against the *base* model (adapter disabled), so every arm — adapter at any α, a merged
checkpoint, a prompting baseline — is scored by the same judge-free yardstick:

* PLR: :func:`wsteer.scoring.persona_log_likelihood_ratio` — mean token logp of the text under the pos-persona
  system prompt minus under the neg-persona one.
* perplexity: of the text after the bare prompt (:func:`wsteer.scoring.perplexity`).
* KL to base: mean over the text's tokens of KL(p_arm ‖ p_base), where p_arm is the next-token distribution of
  whatever wrote the text (adapter at its α, a merged model, the base under a persona prompt) and p_base the base
  model's after the bare prompt, both teacher-forced on the same tokens.

The arithmetic is the core's scoring kernel (:mod:`wsteer.scoring`); this module only decides which model, under
which context and after which prompt, scores what.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from wsteer.chat import Messages, build_messages, encode_completion
from wsteer.lora import scaled_adapter
from wsteer.scoring import (
    completion_log_softmax,
    kl_and_nll,
    perplexity,
    perplexity_of,
    persona_log_likelihood_ratio,
)
from wsteer.textstats import text_metrics

# A context to run a model under, for rows [start, end) of the current list (e.g. per-row adapter scales).
RowContext = Callable[[int, int], AbstractContextManager]


def base_context(model) -> AbstractContextManager:
    """Run ``model`` as its base: adapters disabled on a peft model, nothing to do on a plain one."""
    from peft import PeftModel

    return scaled_adapter(model, 0.0) if isinstance(model, PeftModel) else contextlib.nullcontext()


def kl_and_perplexity(
    arm_model,
    arm_context: RowContext,
    base_model,
    tokenizer,
    conversations: Sequence[Messages],
    prompts: Sequence[str],
    texts: Sequence[str],
    batch_size: int = 16,
) -> list[dict[str, float]]:
    """``{"kl", "perplexity"}`` of each text: mean per-token KL(arm ‖ base), and the base model's perplexity of
    the text after the bare prompt, read off the same base forward pass (NaN for empty texts).

    Args:
        arm_model / arm_context: the model that wrote the texts and the context it wrote them under.
        base_model: the base model (may be ``arm_model`` itself; it is run under :func:`base_context`).
        conversations: the messages each text answered (with the arm's persona system prompt, if any).
        prompts: the bare user prompts; the base reference sees no persona.
    """
    results: list[dict[str, float]] = []
    for start in range(0, len(texts), batch_size):
        end = min(start + batch_size, len(texts))
        completions = [encode_completion(tokenizer, t) for t in texts[start:end]]
        arm = completion_log_softmax(
            arm_model, tokenizer, conversations[start:end], completions, arm_context(start, end)
        )
        bare = [build_messages(p) for p in prompts[start:end]]
        base = completion_log_softmax(base_model, tokenizer, bare, completions, base_context(base_model))
        for log_arm, log_base, ids in zip(arm, base, completions):
            if log_arm.shape[0] == 0:
                results.append({"kl": math.nan, "perplexity": math.nan})
                continue
            kl, nll = kl_and_nll(log_arm, log_base, ids)  # [n], [n]
            results.append({"kl": float(kl.mean()), "perplexity": perplexity_of(nll.tolist())})
    return results


def base_scores(
    base_model,
    tokenizer,
    prompts: Sequence[str],
    texts: Sequence[str],
    pos: str,
    neg: str,
    template: str,
    batch_size: int = 16,
    with_perplexity: bool = True,
) -> list[dict[str, float]]:
    """``{"plr", "perplexity"}`` of each text, judged by the base model (``{"plr"}`` alone without perplexity:
    :func:`kl_and_perplexity` reads it off its base pass for free)."""
    with base_context(base_model):
        plr = persona_log_likelihood_ratio(base_model, tokenizer, prompts, texts, template, pos, neg, batch_size)
        if not with_perplexity:
            return [{"plr": a} for a in plr]
        ppl = perplexity(base_model, tokenizer, prompts, texts, batch_size=batch_size)
    return [{"plr": a, "perplexity": b} for a, b in zip(plr, ppl)]


def length_sorted(answers: Sequence[dict]) -> list[dict]:
    """``answers`` shortest first, by generated tokens (characters where a row has no count).

    Scored in this order, each batch pads to answers of similar length rather than to the longest answer among 16
    unrelated ones: on the demo sweep's answers a third fewer padded positions (bench/scoring_order.py). Sorting
    is stable and the rows are the same dicts, so a caller that zips them with their scores loses nothing.
    """
    return sorted(answers, key=lambda answer: answer.get("tokens", len(answer["text"])))


def score_answers(
    arm_model,
    arm_context: RowContext,
    base_model,
    tokenizer,
    answers: Sequence[dict],
    pair: dict,
    terms: Sequence[str],
    batch_size: int = 16,
    kl: bool = True,
) -> list[dict[str, float]]:
    """Every per-answer metric of an arm's answers (``{"prompt", "text", "messages"}`` dicts): PLR, base
    perplexity, KL to the base (NaN when ``kl`` is off) and the text metrics. Shared by the sweep and A/B."""
    prompts, texts = [a["prompt"] for a in answers], [a["text"] for a in answers]
    scores = base_scores(
        base_model,
        tokenizer,
        prompts,
        texts,
        pair["pos"],
        pair["neg"],
        pair["template"],
        batch_size,
        with_perplexity=not kl,  # the KL pass reads perplexity off its base forward
    )
    if kl:
        conversations = [a["messages"] for a in answers]
        extra = kl_and_perplexity(
            arm_model, arm_context, base_model, tokenizer, conversations, prompts, texts, batch_size
        )
    else:
        extra = [{"kl": math.nan}] * len(answers)
    return [{**s, **e, **text_metrics(t, terms)} for s, e, t in zip(scores, extra, texts)]
