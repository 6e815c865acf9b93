"""The rules on the persona sentences: each turns the marked tokens of a pair into findings.

Rule ids, severities and what each catches are listed in the package docs (:mod:`wsteer.pairs.lint`).
"""

from __future__ import annotations

import itertools
import re
from typing import Sequence

from wsteer.pairs.lint.clauses import Clause
from wsteer.pairs.lint.mirror import Sides
from wsteer.pairs.lint.report import DiffBlock, Finding, Severity
from wsteer.pairs.lint.words import (
    ABSENCE_WORDS,
    ABSTRACT_SUFFIXES,
    BASELINE_WORDS,
    CONFLICT_CUES,
    MENTION_MARKERS,
    NEGATION_IDIOMS,
    NEGATIONS,
    SIDES,
    STANCE_PHRASES,
    STANCE_WORDS,
    Side,
)
from wsteer.pairs.personas import persona_form


def _quote(words: Sequence[str]) -> str:
    return ", ".join(f"'{w}'" for w in words)


def negation_findings(sides: Sides) -> list[Finding]:
    """``negation``: a side that negates (not / no / never / n't / without …)."""
    findings = []
    for side in SIDES:
        tokens = sides.tokens[side]
        hits = []
        for i, token in enumerate(tokens):
            following = tokens[i + 1].norm if i + 1 < len(tokens) else ""
            if (token.norm, following) in NEGATION_IDIOMS:
                continue
            if token.norm in NEGATIONS or token.norm.endswith("n't"):
                hits.append(token.text)
        if hits:
            findings.append(
                Finding(
                    "negation",
                    "error",
                    f"{side} uses negation {_quote(hits)}: a negated trait steers toward the "
                    "trait word itself, not away from it (seed rule 3)",
                    "say the opposite positively: 'untruthful', not 'not truthful'",
                    side,
                    hits,
                )
            )
    return findings


def absence_findings(sides: Sides) -> list[Finding]:
    """``absence``: one side is only the absence of the other, not its opposite pole."""
    findings = []
    for side in SIDES:
        other = sides.other(side)
        content = [t for t in sides.content(side) if t.norm not in ABSENCE_WORDS]
        marker = [
            t.text
            for t in sides.tokens[side]
            if t.norm in NEGATIONS or t.norm.endswith("n't") or t.norm in ABSENCE_WORDS
        ]
        reason = None
        if not content:
            reason = "names no trait at all"
        elif all(t.norm in BASELINE_WORDS for t in content):
            reason = f"is a neutral baseline ({_quote(t.text for t in content)})"
        elif marker and all(sides.shared(t, side) for t in content):
            reason = f"only negates the {other} side ({_quote(marker)} + its words)"
        if reason and sides.content(other):
            findings.append(
                Finding(
                    "absence",
                    "error",
                    f"{side} {reason}: the absence of a trait is not its opposite pole, so the "
                    f"direction points at 'has the trait' vs 'has nothing' (seed rule 4)",
                    "name the same situation from the opposite pole (e.g. 'honest' / 'deceitful')",
                    side,
                    [t.text for t in content] or marker,
                )
            )
    return findings


def pole_in_other_findings(sides: Sides) -> list[Finding]:
    """``pole-in-other``: one side's words all recur in, or are mentioned by, the other side."""
    findings = []
    for side in SIDES:
        other = sides.other(side)
        mine = sides.content(side)
        if not mine:
            continue
        theirs = sides.tokens[other]
        verbatim = {t.norm for t in theirs}
        contained = all(t.norm in verbatim for t in mine) and any(
            t.is_content and t.norm not in {m.norm for m in mine} for t in theirs
        )
        mentioned = []
        for i, token in enumerate(theirs):
            if token.norm in MENTION_MARKERS or token.norm in NEGATIONS or token.norm.endswith("n't"):
                window = [t.norm for t in theirs[i + 1 : i + 5]]
                mentioned += [t.text for t in mine if t.norm in window and t.text not in mentioned]
        if contained or mentioned:
            words = [t.text for t in mine] if contained else mentioned
            how = "all appear verbatim in" if contained else "are mentioned by"
            findings.append(
                Finding(
                    "pole-in-other",
                    "error",
                    f"{side}'s pole word(s) {_quote(words)} {how} {other}: both system "
                    "prompts then contain the pole, so the contrast blurs and the word leaks into both sides",
                    f"write {other} from its own pole without naming {side}'s words",
                    side,
                    words,
                )
            )
    return findings


def clause_findings(unmirrored: dict[Side, list[Clause]]) -> list[Finding]:
    """``unmirrored-clause``: later clauses with no counterpart on the other side."""
    findings = []
    for side in SIDES:
        for clause in unmirrored[side]:
            kind = {"rationale": "a rationale", "condition": "a condition", "relative": "a relative clause"}.get(
                clause.kind, "a clause"
            )
            findings.append(
                Finding(
                    "unmirrored-clause",
                    "error",
                    f"{side} has {kind} with no counterpart on the other side: "
                    f"'{clause.text}' (none of {_quote(t.text for t in clause.content)} appear there, or their "
                    "opposites), so it becomes its own axis",
                    "give both sides the same clause with only the pole flipped, or drop it",
                    side,
                    [t.text for t in clause.content],
                )
            )
    return findings


def content_findings(sides: Sides) -> list[Finding]:
    """``unmirrored-content``: content words with no counterpart on the other side."""
    findings = []
    for side in SIDES:
        loose = [
            t.text for t in sides.tokens[side] if t.mark == "unmirrored" and t.is_content and not t.in_unmirrored_clause
        ]
        if loose:
            findings.append(
                Finding(
                    "unmirrored-content",
                    "error",
                    f"{side} has {_quote(loose)} with no counterpart in "
                    f"{sides.other(side)}: words on one side only become their own axis",
                    "mirror each word on the other side (same word or its opposite), or drop it",
                    side,
                    loose,
                )
            )
    return findings


def extra_findings(sides: Sides) -> list[Finding]:
    """``unbalanced-flip``: the pole said in more words on one side."""
    findings = []
    for side in SIDES:
        extra = [t.text for t in sides.tokens[side] if t.mark == "extra"]
        if extra:
            findings.append(
                Finding(
                    "unbalanced-flip",
                    "warning",
                    f"{side} says its pole in more words ({_quote(extra)} beyond the "
                    f"flipped word): an extra word can carry its own meaning into the contrast",
                    "say both poles in the same number of words ('forgives' / 'resents'), or check the extra word "
                    "adds nothing",
                    side,
                    extra,
                )
            )
    return findings


def length_findings(sides: Sides) -> list[Finding]:
    """``length-imbalance``: one side much longer than the other."""
    n_pos, n_neg = len(sides.words("pos")), len(sides.words("neg"))
    longer, shorter = max(n_pos, n_neg), max(1, min(n_pos, n_neg))
    side = "pos" if n_pos > n_neg else "neg"
    if longer >= 2 * shorter and longer - shorter >= 8:
        severity: Severity = "error"
    elif longer >= 1.5 * shorter and longer - shorter >= 3:
        severity = "warning"
    else:
        return []
    return [
        Finding(
            "length-imbalance",
            severity,
            f"pos has {n_pos} and neg {n_neg} words: length differences "
            "usually mean content one side lacks, and length is the first nuisance axis to leak",
            "bring both sides within a few words of each other by mirroring, not padding",
            side,
        )
    ]


def long_findings(sides: Sides) -> list[Finding]:
    """``long-persona``: over 20 words, several sentences or more than three clauses."""
    findings = []
    for side in SIDES:
        problems = []
        n_words = len(sides.words(side))
        if n_words > 20:
            problems.append(f"{n_words} words")
        sentences = 1 + sum(c.kind == "sentence" for c in sides.clauses[side][1:])
        if sentences > 1:
            problems.append(f"{sentences} sentences")
        if len(sides.clauses[side]) > 3:
            problems.append(f"{len(sides.clauses[side])} clauses")
        if problems:
            findings.append(
                Finding(
                    "long-persona",
                    "warning",
                    f"{side} is long ({', '.join(problems)}): short single sentences "
                    "steer better; every extra clause is one more thing that must mirror (seed rule 2)",
                    "cut to one short sentence that keeps only the conflict",
                    side,
                )
            )
    return findings


def _is_abstract_noun(word: str) -> bool:
    return word.endswith(ABSTRACT_SUFFIXES) or word in {
        "wisdom",
        "speed",
        "truth",
        "freedom",
        "knowledge",
        "growth",
        "beauty",
        "power",
        "order",
        "chaos",
        "justice",
        "mercy",
        "autonomy",
        "tradition",
        "progress",
        "efficiency",
        "quality",
        "excellence",
        "comfort",
        "safety",
        "security",
        "control",
        "harmony",
        "balance",
        "loyalty",
        "honesty",
        "integrity",
        "curiosity",
        "duty",
        "virtue",
        "principle",
        "principles",
        "ideals",
        "values",
        "self",
        "wellbeing",
        "care",
        "fairness",
    }


def abstract_findings(sides: Sides) -> list[Finding]:
    """``abstract-value``: a stated value instead of an enactable conflict."""
    flagged = []
    for side in SIDES:
        tokens = sides.tokens[side]
        norms = [t.norm for t in tokens]
        pairs = list(itertools.pairwise(norms))
        stance = [w for w in norms if w in STANCE_WORDS] + [" ".join(p) for p in pairs if p in STANCE_PHRASES]
        conflict = any(tuple(norms[i : i + len(cue)]) == cue for cue in CONFLICT_CUES for i in range(len(norms)))
        hyphen_label = bool(re.fullmatch(r"[A-Za-z]+(?:-[A-Za-z]+)+", sides.text[side].strip())) and (
            any(w in ("over", "before", "first") for w in norms) or _is_abstract_noun(norms[-1])
        )
        if (stance and not conflict) or hyphen_label:
            flagged.append((side, stance or [sides.text[side].strip()]))
    if not flagged:
        return []
    which = " and ".join(side for side, _ in flagged)
    words = [w for _, ws in flagged for w in ws]
    return [
        Finding(
            "abstract-value",
            "warning",
            f"{which} state{'s' if len(flagged) == 1 else ''} a value "
            f"({_quote(words)}) instead of a conflict the model can act out; stated values tended to be reframed "
            "instrumentally ('I value X because it helps me serve') in-house (seed rule 5, N=3)",
            "describe what the persona does when two goods conflict: 'does A even when it means B' / "
            "'does B even when it means giving up A'",
            flagged[0][0] if len(flagged) == 1 else None,
            words,
        )
    ]


def flip_findings(sites: list[list[DiffBlock]], inverted: bool) -> list[Finding]:
    """``extra-flip``: the pole flips in more than one place (unless a priority inversion)."""
    allowed = 2 if inverted else 1
    if len(sites) <= allowed:
        return []
    places = [
        "/".join(
            " ".join(t.text for b in region for t in getattr(b, side) if t.mark == "flip") or "∅" for side in SIDES
        )
        for region in sites
    ]
    return [
        Finding(
            "extra-flip",
            "warning",
            f"the pole flips in {len(sites)} places ({'; '.join(places)}): each independent "
            "flip is a trait of its own, and the vector learns their mix",
            "flip one thing; split bundled traits into separate pairs",
            None,
            [p for p in places],
        )
    ]


def _n_words(text: str) -> str:
    n = len(text.split())
    return f"{n} word" + ("" if n == 1 else "s")


def form_findings(sides: Sides) -> list[Finding]:
    """``form-mismatch``: one side reads as an adjective, the other as a clause."""
    forms = {side: persona_form(sides.text[side]) for side in SIDES}
    if forms["pos"] == forms["neg"]:
        return []
    return [
        Finding(
            "form-mismatch",
            "warning",
            f"pos reads as {forms['pos']} ({_n_words(sides.text['pos'])}) and "
            f"neg as {forms['neg']} ({_n_words(sides.text['neg'])}); a template fits one form "
            "('a {persona} person' vs 'someone who {persona}')",
            "write both sides in the same form and of similar length",
            None,
        )
    ]
