"""The mirror test proper: align both personas word by word and mark what each word mirrors (see the package docs)."""

from __future__ import annotations

import difflib

from wsteer.pairs.lint.clauses import Clause, split_clauses
from wsteer.pairs.lint.report import DiffBlock
from wsteer.pairs.lint.words import (
    DETERMINERS,
    NEGATIONS,
    PREPOSITIONS,
    SIDES,
    Side,
    Token,
    is_antonym,
    same_word,
    tokenize,
)


# --------------------------------------------------------------------------------------------- the mirror test
class Sides:
    """Both personas tokenised and split, plus the cross-side word matches."""

    def __init__(self, pos: str, neg: str):
        self.text = {"pos": pos, "neg": neg}
        self.tokens = {"pos": tokenize(pos), "neg": tokenize(neg)}
        self.clauses = {side: split_clauses(self.tokens[side]) for side in SIDES}

    def other(self, side: Side) -> Side:
        return "neg" if side == "pos" else "pos"

    def content(self, side: Side) -> list[Token]:
        return [t for t in self.tokens[side] if t.is_content]

    def words(self, side: Side) -> list[Token]:
        return [t for t in self.tokens[side] if t.is_word]

    def shared(self, token: Token, side: Side) -> bool:
        """The word occurs (up to its stem) on the other side."""
        return any(same_word(token.norm, t.norm) for t in self.content(self.other(side)))

    def opposite(self, token: Token, side: Side) -> bool:
        """The other side holds a known opposite of the word."""
        return any(is_antonym(token.norm, t.norm) for t in self.content(self.other(side)))

    def anchored(self, token: Token, side: Side) -> bool:
        return self.shared(token, side) or self.opposite(token, side)


def diff_blocks(sides: Sides) -> list[DiffBlock]:
    """The difflib word diff of the two personas, as aligned blocks of tokens."""
    pos, neg = sides.tokens["pos"], sides.tokens["neg"]
    matcher = difflib.SequenceMatcher(None, [t.norm for t in pos], [t.norm for t in neg], autojunk=False)
    return [DiffBlock(op, pos[i1:i2], neg[j1:j2]) for op, i1, i2, j1, j2 in matcher.get_opcodes()]


def _regions(blocks: list[DiffBlock]) -> list[list[DiffBlock]]:
    """Changed stretches of the diff: runs of changed blocks, joined across equal runs of function words only.

    An equal "it" or "the" between two changes is a coincidence of the alignment, not an anchor, so the flips on
    either side of it belong together. A connective ("and", "because", ",") does separate them: flips in two
    clauses are two flips.
    """
    regions: list[list[DiffBlock]] = []
    current: list[DiffBlock] = []
    pending: list[DiffBlock] = []  # function-only equal blocks that may join two changes
    for block in blocks:
        if block.op != "equal":
            if current:
                current += pending
            current.append(block)
            pending = []
        elif current and not any(t.is_content or t.is_connective for t in block.pos + block.neg):
            pending.append(block)
        else:
            if current:
                regions.append(current)
            current, pending = [], []
    if current:
        regions.append(current)
    return regions


def unmirrored_clauses(sides: Sides) -> dict[Side, list[Clause]]:
    """Later clauses with content but no anchor, except coordinated single-word flips."""
    out: dict[Side, list[Clause]] = {"pos": [], "neg": []}
    for side in SIDES:
        other = sides.clauses[sides.other(side)]
        for number, clause in enumerate(sides.clauses[side]):
            if number == 0 or not clause.content:
                continue
            if any(sides.anchored(t, side) for t in clause.content):
                continue
            counterpart = other[number] if number < len(other) else None
            parallel_flip = (
                clause.kind == "coordination"
                and counterpart is not None
                and counterpart.connective == clause.connective
                and len(clause.content) == 1
                and len(counterpart.content) == 1
            )
            if not parallel_flip:
                out[side].append(clause)
    return out


def mark_tokens(sides: Sides, blocks: list[DiffBlock], inverted: bool) -> list[list[DiffBlock]]:
    """Classify every token (see the module docstring); returns the flip sites.

    Open words pair up within their changed region (see :func:`_regions`): opposites first, then by position.
    When the pair inverts a priority the flips travel with the swapped words, so words left open in one region
    may pair with words left open in another. A leftover in a region that flips is "extra" (the pole said in
    more words on one side: "forgives" / "holds a grudge against") unless it sits in a prepositional phrase
    ("honest with friends"), which is a qualifier; every other leftover is unmirrored. A flip site is a region
    that holds a flip.
    """
    for block in blocks:
        for side in SIDES:
            for token in getattr(block, side):
                if token.norm in NEGATIONS or token.norm.endswith("n't"):
                    token.mark = "negation"
                elif block.op == "equal":
                    token.mark = "same"
                elif not token.is_content:
                    token.mark = "function"
                elif token.in_unmirrored_clause:
                    token.mark = "unmirrored"
                else:
                    token.mark = "open"
    _mark_moved(sides, blocks)
    regions = _regions(blocks)
    leftovers: dict[Side, list[Token]] = {"pos": [], "neg": []}
    in_flipping_region: set[int] = set()
    for region in regions:
        open_pos = [t for b in region for t in b.pos if t.mark == "open"]
        open_neg = [t for b in region for t in b.neg if t.mark == "open"]
        for token in list(open_pos):  # opposites first, wherever they sit in the region
            partner = next((t for t in open_neg if is_antonym(token.norm, t.norm)), None)
            if partner is not None:
                token.mark = partner.mark = "flip"
                open_pos.remove(token)
                open_neg.remove(partner)
        for a, b in zip(open_pos, open_neg):  # then by position
            a.mark = b.mark = "flip"
        if any(t.mark == "flip" for b in region for t in b.pos):
            in_flipping_region.update(id(t) for b in region for t in b.pos + b.neg)
        leftovers["pos"] += open_pos[len(open_neg) :]
        leftovers["neg"] += open_neg[len(open_pos) :]
    for side in SIDES:  # a leftover whose opposite sits elsewhere on the other side is a displaced flip
        for token in leftovers[side]:
            if sides.opposite(token, side):
                token.mark = "flip"
    left = {side: [t for t in leftovers[side] if t.mark == "open"] for side in SIDES}
    if inverted:
        for a, b in zip(left["pos"], left["neg"]):
            a.mark = b.mark = "flip"
    for side in SIDES:
        for token in left[side]:
            if token.mark == "open":
                extra = id(token) in in_flipping_region and not _in_prepositional_phrase(sides.tokens[side], token)
                token.mark = "extra" if extra else "unmirrored"
    return [region for region in regions if any(t.mark == "flip" for b in region for t in b.pos + b.neg)]


def _in_prepositional_phrase(tokens: list[Token], token: Token) -> bool:
    """True if ``token`` follows a preposition, skipping determiners ("with friends", "for the team")."""
    i = token.index - 1
    while i >= 0 and tokens[i].norm in DETERMINERS:
        i -= 1
    return i >= 0 and tokens[i].norm in PREPOSITIONS


def _mark_moved(sides: Sides, blocks: list[DiffBlock]) -> None:
    """Open words that occur among the other side's changed words are "moved" (mirrored by reordering).

    Occurrences are counted: in "bends a rule when following it …" / "follows a rule even when following it …"
    one "following" is matched in place, so the other side's "follows" has no copy left and stays open (it is
    the flip of "bends").
    """
    changed = {side: [t for b in blocks if b.op != "equal" for t in getattr(b, side) if t.is_content] for side in SIDES}
    for side in SIDES:
        other = sides.other(side)
        used: list[Token] = []
        for token in changed[side]:
            if token.mark != "open":
                continue
            match = next((t for t in changed[other] if same_word(token.norm, t.norm) and t not in used), None)
            if match is not None:
                used.append(match)
                token.mark = "moved"


def inverts_priority(sides: Sides) -> bool:
    """True when the words both sides share occur in a different order (a swap of roles, as in rule 5)."""

    def order(side: Side) -> list[str]:
        seen: list[str] = []
        for token in sides.content(side):
            if sides.shared(token, side) and not any(same_word(token.norm, s) for s in seen):
                seen.append(token.norm)
        return seen

    pos_order = order("pos")
    neg_positions = []
    for word in pos_order:
        index = next((i for i, other in enumerate(order("neg")) if same_word(word, other)), None)
        if index is not None:
            neg_positions.append(index)
    return neg_positions != sorted(neg_positions)
