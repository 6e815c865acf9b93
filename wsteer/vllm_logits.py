"""The persona-vocabulary filter inside vLLM: a vLLM v1 logits processor running :mod:`wsteer.leak`'s own rules.

vLLM's ``bad_words`` cannot express the filter: it strips a word's leading space and adds the space form back only
when it tokenises to as many tokens, so with SmolLM2's tokenizer " honest" (one token) is never banned. This
processor blocks exactly what :class:`wsteer.leak.PersonaVocabularyProcessor` blocks — the same
:class:`wsteer.leak.PersonaVocabulary` index and word-start rule, on the prompt + generated tokens of each row.

A request opts in through ``SamplingParams(extra_args={"wsteer_terms": [...], "wsteer_mode": "ban"|"penalty",
"wsteer_penalty": 5.0})`` (over HTTP: the completion request's ``vllm_xargs``, which takes flat values only). The
engine loads the class by name: ``LLM(logits_processors=[PROCESSOR])`` in process, ``vllm serve …
--logits-processors PROCESSOR`` for a server (wsteer must be importable in the server's environment).
"""

from __future__ import annotations

from typing import Any

TERMS, MODE, PENALTY = "wsteer_terms", "wsteer_mode", "wsteer_penalty"
PROCESSOR = "wsteer.vllm_logits:PersonaVocabularyLogitsProcessor"
_TAIL = 32  # tokens of context the rules look at (a spelling's prefix plus the token before it)

try:
    from vllm.v1.sample.logits_processor import AdapterLogitsProcessor
except ImportError:  # vLLM absent: the module still imports (the class is only loaded by a vLLM engine)
    AdapterLogitsProcessor = object  # type: ignore[assignment,misc]


class PersonaVocabularyLogitsProcessor(AdapterLogitsProcessor):  # type: ignore[misc,valid-type]
    """Per request: ban (or penalise) the persona words named in ``extra_args["wsteer_terms"]``."""

    def __init__(self, vllm_config, device, is_pin_memory: bool):
        super().__init__(vllm_config, device, is_pin_memory)
        from transformers import AutoTokenizer

        model_config = vllm_config.model_config
        self.tokenizer = AutoTokenizer.from_pretrained(model_config.tokenizer, trust_remote_code=False)

    def is_argmax_invariant(self) -> bool:
        """Banning tokens can change the greedy choice."""
        return False

    def new_req_logits_processor(self, params) -> Any:
        """The row's filter, or None when the request carries no persona terms."""
        settings = params.extra_args or {}
        if not settings.get(TERMS):
            return None
        return row_filter(self.tokenizer, settings[TERMS], settings.get(MODE, "ban"), settings.get(PENALTY, 5.0))


def row_filter(tokenizer, terms, mode: str = "ban", penalty: float = 5.0):
    """A ``(prompt_ids, output_ids, logits[V]) -> logits`` function applying :mod:`wsteer.leak`'s rules."""
    from wsteer.leak import _vocabulary_for, _word_ends_for

    vocabulary = _vocabulary_for(tokenizer, tuple(terms))
    ends_word = _word_ends_for(tokenizer)
    ban = mode == "ban"
    penalty = float(penalty)

    def apply(prompt_ids: list[int], output_ids: list[int], logits):
        import torch

        tail = (list(prompt_ids[-_TAIL:]) + list(output_ids))[-_TAIL:]
        blocked = vocabulary.blocked(tail, ends_word)
        if not blocked:
            return logits
        ids = torch.tensor(sorted(set(blocked)), device=logits.device)  # logits: [V], one row
        logits[ids] = float("-inf") if ban else logits[ids] - penalty
        return logits

    return apply
