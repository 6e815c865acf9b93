"""Chat formatting: persona system prompts, chat templates, padded prompt batches.

Every stage builds prompts here so that generation, training and scoring tokenise a conversation the same way:
render the chat template to text (with the generation prompt), then tokenise that text without adding special
tokens — the same order TRL's preference trainers use.
"""

from __future__ import annotations

from typing import Sequence

from wsteer.errors import WsteerError

Messages = list[dict[str, str]]

PERSONA_SLOT = "{persona}"


def fill_template(template: str, persona: str) -> str:
    """Put ``persona`` into the template's single ``{persona}`` slot.

    Only the literal ``{persona}`` is replaced, so templates may contain other braces.
    """
    count = template.count(PERSONA_SLOT)
    if count != 1:
        raise WsteerError(
            f"template must contain exactly one {PERSONA_SLOT} slot, found {count}: {template!r}",
            fix=f'write the template with one {PERSONA_SLOT}, e.g. "Pretend you\'re a {PERSONA_SLOT} person."',
        )
    return template.replace(PERSONA_SLOT, persona.strip())


def build_messages(prompt: str, system: str | None = None) -> Messages:
    """A one-turn conversation: optional system prompt, then the user prompt."""
    messages: Messages = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    return messages


def persona_messages(prompt: str, template: str | None, persona: str | None) -> Messages:
    """The conversation for ``prompt`` under a persona system prompt (no system prompt if persona is None)."""
    system = fill_template(template, persona) if (template and persona) else None
    return build_messages(prompt, system)


def require_chat_template(tokenizer, where: str = "model.name") -> None:
    """Raise a clear error if the tokenizer cannot format conversations."""
    if not getattr(tokenizer, "chat_template", None):
        raise WsteerError(
            "the tokenizer has no chat template, so system/user turns cannot be formatted",
            where=where,
            fix="use an instruction-tuned model, or add a chat_template to its tokenizer_config.json",
        )


def render_prompt(tokenizer, messages: Messages) -> str:
    """The chat-template text of ``messages`` followed by the assistant generation prompt."""
    require_chat_template(tokenizer)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def encode_prompt(
    tokenizer, messages: Messages, max_prompt_tokens: int | None = None, where: str = "prompt"
) -> list[int]:
    """Token ids of the rendered prompt. Raises if it is longer than ``max_prompt_tokens``."""
    ids = tokenizer(render_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"]
    if max_prompt_tokens is not None and len(ids) > max_prompt_tokens:
        raise WsteerError(
            f"prompt is {len(ids)} tokens, over the limit of {max_prompt_tokens}",
            where=where,
            fix="shorten the prompt or raise max_prompt_tokens",
        )
    return ids


def encode_completion(tokenizer, text: str) -> list[int]:
    """Token ids of a completion's text, without special tokens (appended after a prompt)."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int, side: str = "left"):
    """Pad token-id lists into ``input_ids`` and ``attention_mask`` tensors, both [B, T_max]."""
    import torch

    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if not seq:
            continue
        values = torch.tensor(list(seq), dtype=torch.long)
        if side == "left":
            input_ids[row, width - len(seq) :] = values
            attention_mask[row, width - len(seq) :] = 1
        else:
            input_ids[row, : len(seq)] = values
            attention_mask[row, : len(seq)] = 1
    return input_ids, attention_mask
