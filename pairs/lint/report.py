"""Reporting: findings, the lint report of one pair, and its text rendering (aligned diff, findings table)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, Sequence

from wsteer.pairs.lint.words import Token

Severity = Literal["error", "warning"]


# --------------------------------------------------------------------------------------------- findings
@dataclass
class Finding:
    """One lint result: which rule, how bad, what and how to fix it."""

    rule: str
    severity: Severity
    message: str
    fix: str
    side: str | None = None
    words: list[str] = field(default_factory=list)


@dataclass
class DiffBlock:
    """One aligned block of the word diff: ``op`` is difflib's (equal, replace, insert, delete)."""

    op: str
    pos: list[Token]
    neg: list[Token]


@dataclass
class LintReport:
    """The mirror test of one pair: findings and the aligned word diff."""

    pos: str
    neg: str
    findings: list[Finding]
    diff: list[DiffBlock]
    id: str | None = None
    where: str | None = None
    second_opinion: dict | None = None

    @property
    def errors(self) -> list[Finding]:
        """Findings of severity error."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """Findings of severity warning."""
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when nothing is above warning."""
        return not self.errors

    @property
    def rules(self) -> set[str]:
        """The ids of the rules that fired."""
        return {f.rule for f in self.findings}

    def to_dict(self) -> dict:
        """A JSON-ready dict: pair, status, findings and the diff (tokens with their marks)."""
        return {
            "id": self.id,
            "where": self.where,
            "pos": self.pos,
            "neg": self.neg,
            "status": "fail" if self.errors else ("warn" if self.findings else "pass"),
            "findings": [asdict(f) for f in self.findings],
            "diff": [
                {"op": b.op, "pos": [[t.text, t.mark] for t in b.pos], "neg": [[t.text, t.mark] for t in b.neg]}
                for b in self.diff
            ],
            "diff_text": format_diff(self.diff),
            **({"second_opinion": self.second_opinion} if self.second_opinion is not None else {}),
        }


# --------------------------------------------------------------------------------------------- display
MARKS = {"flip": ("[", "]"), "unmirrored": ("<", ">"), "extra": ("+", ""), "moved": ("~", ""), "negation": ("!", "")}
LEGEND = "[flipped]  <unmirrored>  +extra word of a flip  ~moved (same word, other place)  !negation"


def _marked(token: Token) -> str:
    before, after = MARKS.get(token.mark, ("", ""))
    return f"{before}{token.text}{after}"


def format_diff(blocks: Sequence[DiffBlock], width: int = 110) -> str:
    """The two personas one above the other, aligned block by block, flipped and unmirrored words marked."""
    columns = []
    for block in blocks:
        if block.op == "equal":
            for a, b in zip(block.pos, block.neg):
                text_a, text_b = _marked(a), _marked(b)
                columns.append((text_a, text_b))
        else:
            columns.append((" ".join(_marked(t) for t in block.pos), " ".join(_marked(t) for t in block.neg)))
    lines, row_pos, row_neg = [], "pos  ", "neg  "
    for text_a, text_b in columns:
        cell = max(len(text_a), len(text_b))
        if len(row_pos) + cell > width and row_pos.strip() != "pos":
            lines += [row_pos.rstrip(), row_neg.rstrip(), ""]
            row_pos, row_neg = "     ", "     "
        row_pos += text_a.ljust(cell) + "  "
        row_neg += text_b.ljust(cell) + "  "
    lines += [row_pos.rstrip(), row_neg.rstrip()]
    return "\n".join(lines)


def format_report(report: LintReport) -> str:
    """Human-readable lint of one pair: status line, aligned diff and a findings table."""
    status = "FAIL" if report.errors else ("WARN" if report.findings else "PASS")
    name = report.id or "pair"
    head = f"{status}  {name}" + (f"  ({report.where})" if report.where else "")
    head += f"  — {len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    lines = [head, format_diff(report.diff)]
    for f in report.findings:
        lines.append(f"  {f.severity:<7}  {f.rule:<18}  {f.message}")
        lines.append(f"  {'':<7}  {'':<18}  fix: {f.fix}")
    if report.second_opinion is not None:
        opinion = report.second_opinion
        lines.append(
            f"  second opinion ({opinion.get('source')}): {opinion.get('verdict')} — "
            f"{opinion.get('reason') or ''}".rstrip(" —")
        )
    return "\n".join(lines)


def format_reports(reports: Sequence[LintReport]) -> str:
    """All reports, a legend and a summary line."""
    failed = sum(bool(r.errors) for r in reports)
    warned = sum(bool(r.warnings) and not r.errors for r in reports)
    body = "\n\n".join(format_report(r) for r in reports)
    summary = f"{len(reports)} pair(s): {failed} fail, {warned} warn, {len(reports) - failed - warned} pass"
    return f"{body}\n\nlegend: {LEGEND}\n{summary}"
