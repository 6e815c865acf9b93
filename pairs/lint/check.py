"""Running the mirror test: :func:`lint_pair` runs every rule on one pair; :class:`LintConfig` configures the
command."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from wsteer.pairs.lint.mirror import Sides, diff_blocks, inverts_priority, mark_tokens, unmirrored_clauses
from wsteer.pairs.lint.report import Finding, LintReport
from wsteer.pairs.lint.rules import (
    absence_findings,
    abstract_findings,
    clause_findings,
    content_findings,
    extra_findings,
    flip_findings,
    form_findings,
    length_findings,
    long_findings,
    negation_findings,
    pole_in_other_findings,
)
from wsteer.pairs.lint.words import SIDES
from wsteer.pairs.personas import PersonaPair

from wsteer.config import option


@dataclass
class LintConfig:
    """``wsteer pairs lint``: mirror-test persona pairs from a file, or one pair given as pos and neg."""

    file: str | None = option(None, "Pairs file (YAML or JSONL) to lint (or give it as the positional FILE).")
    pos: str | None = option(None, "pos persona (with neg, instead of file).")
    neg: str | None = option(None, "neg persona (with pos).")
    ids: list[str] = option(help="Only these pair ids of file (empty: all).", factory=list)
    json: bool = option(False, "Print JSON instead of the human table.")
    second_opinion: str | None = option(
        None,
        "Also ask a model: a YAML file of SecondOpinionConfig keys (backend, base_url, model, api_key_env, "
        "local, …); off unless given.",
    )


def lint_pair(pos: str, neg: str, pair_id: str | None = None, where: str | None = None) -> LintReport:
    """Run the mirror test on one pair. ``report.ok`` is False when any finding is an error."""
    sides = Sides(pos.strip(), neg.strip())
    blocks = diff_blocks(sides)
    if pos.strip().lower() == neg.strip().lower():
        for block in blocks:
            for token in block.pos + block.neg:
                token.mark = "same"
        finding = Finding(
            "identical",
            "error",
            "pos and neg are the same text: there is no direction to learn",
            "write the opposite pole on the neg side",
        )
        return LintReport(pos, neg, [finding], blocks, pair_id, where)
    unmirrored = unmirrored_clauses(sides)
    for side in SIDES:
        for clause in unmirrored[side]:
            for token in clause.tokens:
                token.in_unmirrored_clause = True
    inverted = inverts_priority(sides)
    sites = mark_tokens(sides, blocks, inverted)
    findings = (
        negation_findings(sides)
        + absence_findings(sides)
        + pole_in_other_findings(sides)
        + clause_findings(unmirrored)
        + content_findings(sides)
        + extra_findings(sides)
        + length_findings(sides)
        + long_findings(sides)
        + abstract_findings(sides)
        + flip_findings(sites, inverted)
        + form_findings(sides)
    )
    findings.sort(key=lambda f: f.severity != "error")
    return LintReport(pos, neg, findings, blocks, pair_id, where)


def lint_pairs(pairs: Sequence[PersonaPair]) -> list[LintReport]:
    """The mirror test for each pair (see :func:`lint_pair`)."""
    return [lint_pair(p.pos, p.neg, p.id, p.where) for p in pairs]
