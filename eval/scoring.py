"""Per-generation scores that need the model: trait (PLR), coherence (base perplexity) and KL to the base.

All three are measured against the *base* model (adapter disabled) so that every arm — adapter at any α, prompt
baselines — is scored by the same judge-free yardstick:

* PLR: :func:`wsteer.scoring.persona_log_likelihood_ratio` — mean token logp of the text under the pos-persona
  system prompt minus under the neg-persona one.
* perplexity: of the text after the prompt with no persona (:func:`wsteer.scoring.perplexity`).
* KL to base: mean over the text's tokens of KL(p_arm ‖ p_base), where p_arm is the next-token distribution of the
  arm that wrote the text (adapter at its α, or the base under a persona prompt) and p_base the base model's with
  no persona, both teacher-forced on the same tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from wsteer.chat import Messages, build_messages, encode_completion, encode_prompt, pad_batch
from wsteer.lora import per_row_adapter_scale, scaled_adapter
from wsteer.scoring import perplexity, persona_log_likelihood_ratio


def _completion_logprobs(model, tokenizer, conversations: Sequence[Messages], completions: Sequence[list[int]],
                         context) -> list:
    """fp32 log-softmax [n_i, V] at the positions that predict each completion's tokens, under ``context``."""
    import torch

    device = next(model.parameters()).device
    prompts = [encode_prompt(tokenizer, messages) for messages in conversations]
    input_ids, attention_mask = pad_batch([p + c for p, c in zip(prompts, completions)], tokenizer.pad_token_id,
                                          side="right")  # [B, T]
    with torch.inference_mode(), context:
        logits = model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).logits  # [B, T, V]
    return [torch.log_softmax(logits[row, len(p) - 1:len(p) - 1 + len(c)].float(), dim=-1)  # [n, V]
            for row, (p, c) in enumerate(zip(prompts, completions))]


def kl_to_base(model, tokenizer, conversations: Sequence[Messages], prompts: Sequence[str], texts: Sequence[str],
               alphas: Sequence[float], batch_size: int = 16) -> list[float]:
    """Mean per-token KL(arm ‖ base) of each text; NaN for empty texts.

    Args:
        model: a peft model with the steering adapter loaded.
        conversations: the messages each text was generated from (persona system prompt or none).
        prompts: the bare user prompts (the base reference sees no persona).
        texts: the generations.
        alphas: the adapter scale each text was generated at (0 for prompt baselines).
    """
    results: list[float] = []
    for start in range(0, len(texts), batch_size):
        end = start + batch_size
        completions = [encode_completion(tokenizer, t) for t in texts[start:end]]
        arm = _completion_logprobs(model, tokenizer, conversations[start:end], completions,
                                   per_row_adapter_scale(model, list(alphas[start:end])))
        base = _completion_logprobs(model, tokenizer, [build_messages(p) for p in prompts[start:end]],
                                    completions, scaled_adapter(model, 0.0))
        for log_arm, log_base in zip(arm, base):
            if log_arm.shape[0] == 0:
                results.append(math.nan)
                continue
            kl = (log_arm.exp() * (log_arm - log_base)).sum(-1).clamp_min(0.0)  # [n]
            results.append(float(kl.mean()))
    return results


def model_scores(model, tokenizer, rows: Sequence[dict], pos: str, neg: str, template: str,
                 with_kl: bool = True, batch_size: int = 16) -> list[dict[str, float]]:
    """``{"plr", "perplexity", "kl"}`` for each generation row (``prompt``, ``text``, ``messages``, ``alpha``)."""
    prompts = [r["prompt"] for r in rows]
    texts = [r["text"] for r in rows]
    with scaled_adapter(model, 0.0):  # the base model is the judge
        plr = persona_log_likelihood_ratio(model, tokenizer, prompts, texts, template, pos, neg, batch_size)
        ppl = perplexity(model, tokenizer, prompts, texts, batch_size=batch_size)
    kl = (kl_to_base(model, tokenizer, [r["messages"] for r in rows], prompts, texts,
                     [r["alpha"] or 0.0 for r in rows], batch_size) if with_kl else [math.nan] * len(rows))
    return [{"plr": a, "perplexity": b, "kl": c} for a, b, c in zip(plr, ppl, kl)]
