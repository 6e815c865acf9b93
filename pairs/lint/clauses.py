"""Clauses: a persona split at connectives (because, even when, and, …)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from wsteer.pairs.lint.words import CONNECTIVES, Token


# --------------------------------------------------------------------------------------------- clauses
@dataclass
class Clause:
    """A span of tokens introduced by a connective (the first clause has none)."""

    tokens: list[Token]
    kind: str  # main | rationale | condition | coordination | relative | sentence
    connective: str

    @property
    def content(self) -> list[Token]:
        return [t for t in self.tokens if t.is_content]

    @property
    def text(self) -> str:
        return " ".join(t.text for t in self.tokens)


def _match_connective(norms: Sequence[str], start: int) -> tuple[tuple[str, ...], str] | None:
    for words, kind in sorted(CONNECTIVES.items(), key=lambda item: -len(item[0])):
        if tuple(norms[start : start + len(words)]) == words:
            return words, kind
    return None


def split_clauses(tokens: list[Token]) -> list[Clause]:
    """Split at connectives; each token's ``clause`` is set to its clause's index. Empty clauses are dropped."""
    norms = [t.norm for t in tokens]
    clauses: list[Clause] = [Clause([], "main", "")]
    i = 0
    while i < len(tokens):
        match = _match_connective(norms, i)
        if match:
            words, kind = match
            if clauses[-1].tokens or clauses[-1].kind != "main":
                clauses.append(Clause([], kind, " ".join(words)))
            else:  # a leading connective ("when angry, …") opens the first clause
                clauses[-1] = Clause([], "main", " ".join(words))
            clauses[-1].tokens.extend(tokens[i : i + len(words)])
            for token in tokens[i : i + len(words)]:
                token.is_connective = True
            i += len(words)
            continue
        clauses[-1].tokens.append(tokens[i])
        i += 1
    clauses = [c for c in clauses if any(t.is_word for t in c.tokens) or c.kind == "main"]
    for number, clause in enumerate(clauses):
        for token in clause.tokens:
            token.clause = number
    return clauses
