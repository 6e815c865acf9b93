"""The persona-vocabulary logits processor: keep the persona's own words out of generations.

A steering adapter trained on answers that say "As an honest person, …" learns the word, not the behaviour, and an
eval that lets the steered model say "honest" measures vocabulary. This processor blocks the persona's words at
decoding time (``ban``) or makes them less likely (``penalty``). What counts as a persona word is exactly what the
string-level detector :func:`wsteer.textstats.find_leaks` counts: :func:`wsteer.textstats.persona_terms` of the
personas plus user terms, with the inflections in :data:`wsteer.textstats.LEAK_SUFFIXES`.

Token level. Each word form is spelled in lower, Capitalised and UPPER case, each with and without a leading
space, and tokenised (SmolLM2's byte-level BPE writes the space into the token: " honest" is one token ``Ġhonest``
while "honest" is ``hon`` + ``est``). A spelling that is one token is blocked outright; for a multi-token spelling
only its *last* token is blocked, and only in a row whose generated tokens end with the spelling's prefix — so
" dish" stays allowed and only "onest" after " dish" is blocked. Spellings without a leading space count only at a
word start (the token before them does not end in a letter or digit), like the detector's ``\\b``.

Limits: only the tokenisations the tokenizer itself produces for each spelling are covered; a model that spells a
word through an unusual token path (" hon" + "est") is not stopped. The string detector still counts those, so
report leak rates with it.

Rows of a batch can carry different personas (eval sweeps several adapters at once): pass one term list per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

from wsteer.config import option
from wsteer.textstats import LEAK_SUFFIXES, persona_terms

Mode = Literal["ban", "penalty"]


def spellings(term: str) -> list[str]:
    """Every surface spelling of a term that is blocked: inflections x case x leading space."""
    forms = [term.lower() + suffix for suffix in ("", *LEAK_SUFFIXES)]
    out: list[str] = []
    for form in forms:
        for cased in (form, form[:1].upper() + form[1:], form.upper()):
            for spelled in (cased, " " + cased):
                if spelled not in out:
                    out.append(spelled)
    return out


@dataclass
class PersonaVocabulary:
    """The token sequences of one term list, indexed for a fast per-step check.

    ``always``: single tokens banned anywhere (spellings with a leading space).
    ``at_word_start``: single tokens banned only at a word start (spellings without a leading space).
    ``continuations``: last prefix token -> [(prefix, banned last token, needs word start)].
    """

    terms: tuple[str, ...]
    always: list[int] = field(default_factory=list)
    at_word_start: list[int] = field(default_factory=list)
    continuations: dict[int, list[tuple[tuple[int, ...], int, bool]]] = field(default_factory=dict)

    @classmethod
    def build(cls, tokenizer, terms: Sequence[str]) -> PersonaVocabulary:
        """Tokenise every spelling of every term with ``tokenizer``."""
        vocab = cls(tuple(terms))
        always, at_start = set(), set()
        for term in terms:
            for spelled in spellings(term):
                ids = tokenizer(spelled, add_special_tokens=False)["input_ids"]
                if not ids:
                    continue
                needs_start = not spelled.startswith(" ")
                if len(ids) == 1:
                    (at_start if needs_start else always).add(ids[0])
                    continue
                entry = (tuple(ids[:-1]), ids[-1], needs_start)
                bucket = vocab.continuations.setdefault(ids[-2], [])
                if entry not in bucket:
                    bucket.append(entry)
        vocab.always = sorted(always)
        vocab.at_word_start = sorted(at_start - always)
        return vocab

    def blocked(self, row: Sequence[int], ends_word: WordEnds) -> list[int]:
        """Token ids blocked as the next token after the token ids ``row``."""
        blocked = list(self.always)
        last = row[-1] if len(row) else None
        if last is None or not ends_word(last):
            blocked.extend(self.at_word_start)
        for prefix, token, needs_start in self.continuations.get(last, ()) if last is not None else ():
            n = len(prefix)
            if len(row) < n or tuple(row[-n:]) != prefix:
                continue
            if needs_start and len(row) > n and ends_word(row[-n - 1]):
                continue  # "dis" + "hon" + "est": inside another word, not the term
            blocked.append(token)
        return blocked


class WordEnds:
    """Whether a token's text ends inside a word (its last character is a letter or digit); cached per id."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._cache: dict[int, bool] = {}

    def __call__(self, token_id: int) -> bool:
        value = self._cache.get(token_id)
        if value is None:
            text = self.tokenizer.decode([token_id], skip_special_tokens=False)
            value = bool(text) and text[-1].isalnum()
            self._cache[token_id] = value
        return value


class PersonaVocabularyProcessor:
    """A ``transformers`` logits processor that bans (or penalises) persona words, with a term list per row.

    Args:
        tokenizer: the generating model's tokenizer.
        terms_per_row: one list of terms per batch row (rows may share or differ).
        mode: ``ban`` sets the blocked logits to -inf; ``penalty`` subtracts ``penalty`` from them.
        penalty: logit penalty for ``penalty`` mode.

    Place it before temperature / top-p warpers and samplers (``HFBackend`` puts caller processors first).
    """

    def __init__(self, tokenizer, terms_per_row: Sequence[Sequence[str]], mode: Mode = "ban", penalty: float = 5.0):
        if mode not in ("ban", "penalty"):
            raise ValueError(f"mode must be 'ban' or 'penalty', got {mode!r}")
        self.mode = mode
        self.penalty = float(penalty)
        self._ends_word = _word_ends_for(tokenizer)
        self.vocabularies = [_vocabulary_for(tokenizer, tuple(terms)) for terms in terms_per_row]

    @classmethod
    def for_personas(
        cls,
        tokenizer,
        personas_per_row: Sequence[Sequence[str]],
        extra_terms: Sequence[str] = (),
        mode: Mode = "ban",
        penalty: float = 5.0,
    ) -> PersonaVocabularyProcessor:
        """Rows given as persona texts, e.g. ``[("honest", "dishonest"), ("brave", "cowardly")]``; the terms
        are :func:`wsteer.textstats.persona_terms` of each row's personas plus ``extra_terms``."""
        rows = [persona_terms(*personas, extra=extra_terms) for personas in personas_per_row]
        return cls(tokenizer, rows, mode=mode, penalty=penalty)

    def __call__(self, input_ids, scores):
        import torch

        # input_ids [B, T] (prompt + generated so far), scores [B, V]
        if input_ids.shape[0] != len(self.vocabularies):
            raise ValueError(
                f"processor built for {len(self.vocabularies)} rows, batch has {input_ids.shape[0]} "
                "(beam search / num_return_sequences > 1 are not supported)"
            )
        rows = input_ids.tolist()
        scores = scores.clone()
        for index, (row, vocab) in enumerate(zip(rows, self.vocabularies)):
            blocked = vocab.blocked(row, self._ends_word)
            if not blocked:
                continue
            ids = torch.tensor(sorted(set(blocked)), device=scores.device)
            if self.mode == "ban":
                scores[index, ids] = float("-inf")
            else:
                scores[index, ids] -= self.penalty
        return scores


# One vocabulary per (tokenizer, terms) and one word-end cache per tokenizer: eval builds a processor per batch.
# Entries hold the tokenizer itself, so its id() cannot be reused by another object while it is cached.
_VOCAB_CACHE: dict[tuple[int, tuple[str, ...]], tuple[object, PersonaVocabulary]] = {}
_WORD_ENDS: dict[int, WordEnds] = {}


def _vocabulary_for(tokenizer, terms: tuple[str, ...]) -> PersonaVocabulary:
    key = (id(tokenizer), terms)
    cached = _VOCAB_CACHE.get(key)
    if cached is None or cached[0] is not tokenizer:
        cached = _VOCAB_CACHE[key] = (tokenizer, PersonaVocabulary.build(tokenizer, terms))
    return cached[1]


def _word_ends_for(tokenizer) -> WordEnds:
    ends = _WORD_ENDS.get(id(tokenizer))
    if ends is None or ends.tokenizer is not tokenizer:
        ends = _WORD_ENDS[id(tokenizer)] = WordEnds(tokenizer)
    return ends


@dataclass
class VocabularyFilter:
    """Keep persona words out of the answers while they are generated (see wsteer.leak)."""

    mode: Literal["off", "ban", "penalty"] = option(
        "off",
        "'ban' blocks the persona's words, 'penalty' lowers their logits, 'off' leaves decoding alone "
        "(curation still strips persona echo).",
    )
    penalty: float = option(5.0, "Logit penalty in 'penalty' mode.")
    extra_terms: list[str] = option(help="More words to treat as persona vocabulary.", factory=list)
