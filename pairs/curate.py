"""``wsteer pairs curate``: make cho and rej differ in the trait and as little as possible in anything else.

The steering direction is mean(cho - rej) over the data, so every systematic difference becomes part of it. Each
rule below targets one such difference, has an id, and counts what it did. Rules run in this order on every pair
and a pair leaves at the first rule that drops it:

===============  ==========================================================================================
rule id          what it does
===============  ==========================================================================================
empty            drop if a side has fewer than ``empty.min_words`` words
truncated        a side that hit max_new_tokens: cut its unfinished last sentence (``trim``), ``drop``, ``keep``
degenerate       drop if a side is a repetition loop (``wsteer.textstats.is_degenerate``)
language         drop if cho and rej (or a side and the prompt) are in different languages
refusal          drop if exactly one side refuses or opens with AI boilerplate (``keep`` for refusal traits)
persona_echo     strip sentences that restate the persona ("As an honest person, I …"); drop if echo remains
                 or too little is left
length           trim the longer side at a sentence boundary until longer/shorter <= ``length.max_ratio``;
                 drop if no boundary gets there, or if the trimmed side would be under ``min_trimmed_words``
near_identical   drop if cho and rej are (almost) the same text: no trait signal, only noise. Last, because
                 trimming can cut two answers back to the prefix they share (same seed, same opening)
===============  ==========================================================================================

Personas are never edited, only answers; every kept line keeps its fields and gains
``curation: {source_line, rules, len_before, len_after}`` (lengths in words). If more than ``abandon_share`` of the
pairs were rewritten or dropped (rules in ``abandon_ignores`` aside), the round is reported as failed: fix the pair
or the template rather than curate harder (``--force`` writes the output anyway).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from wsteer import textstats as ts
from wsteer.config import option
from wsteer.errors import ConfigError, DataError
from wsteer.io import atomic_write_text, sha256_path, to_json, write_json, write_jsonl
from wsteer.pair_sources import read_pair_source, strip_where

STAGE = "pairs.curate"
SIDES = ("cho", "rej")
RULE_IDS = ("empty", "truncated", "degenerate", "language", "refusal", "persona_echo", "length", "near_identical")


# --------------------------------------------------------------------------------------------- config
@dataclass
class EmptyRule:
    """Sides with (almost) no text."""

    min_words: int = option(1, "Drop the pair if a side has fewer words than this.")


@dataclass
class TruncatedRule:
    """Sides that stopped at max_new_tokens (``finish == 'length'`` in the raw record)."""

    action: Literal["trim", "drop", "keep"] = option(
        "trim",
        "'trim' cuts the unfinished last sentence (drops the pair if nothing is left), 'drop' drops the "
        "pair, 'keep' leaves it.",
    )


@dataclass
class DegenerateRule:
    """Repetition loops."""

    enabled: bool = option(
        True, "Drop pairs where a side repeats itself (a 4-gram more than 3 times, or distinct-3 < 0.4)."
    )


@dataclass
class LanguageRule:
    """Answers in different languages."""

    enabled: bool = option(True, "Drop pairs whose sides are in different languages.")
    match_prompt: bool = option(True, "Also drop when a side's language differs from the prompt's.")


@dataclass
class RefusalRule:
    """One side refuses (or opens with AI boilerplate) and the other does not."""

    action: Literal["drop_mismatch", "keep"] = option(
        "drop_mismatch", "'drop_mismatch' drops such pairs; use 'keep' when refusing is the trait you steer."
    )
    boilerplate: bool = option(True, "Treat AI self-description ('As an AI, …') like a refusal.")


@dataclass
class EchoRule:
    """Sentences restating the persona."""

    enabled: bool = option(True, "Strip persona-echo sentences; drop the pair if echo remains.")
    extra_terms: list[str] = option(help="More words to count as persona vocabulary.", factory=list)
    min_words_left: int = option(3, "Drop the pair if a stripped side keeps fewer words than this.")


@dataclass
class NearIdenticalRule:
    """cho ≈ rej."""

    enabled: bool = option(True, "Drop pairs whose sides are nearly the same text.")
    threshold: float = option(
        0.9, "Word-sequence similarity (difflib ratio, 0..1) at or above which a pair is near-identical."
    )


@dataclass
class LengthRule:
    """Length mismatch — the most common nuisance axis."""

    enabled: bool = option(True, "Match lengths by trimming the longer side at a sentence boundary.")
    max_ratio: float = option(1.25, "Largest allowed longer/shorter word-count ratio.")
    min_trimmed_words: int = option(
        8,
        "Drop instead of trimming when the trimmed side would keep fewer words "
        "than this (a 4-word pair carries almost no signal).",
    )

    def __post_init__(self) -> None:
        if self.max_ratio < 1:
            raise ValueError(f"length.max_ratio must be >= 1, got {self.max_ratio}")


@dataclass
class CurateConfig:
    """One curation pass over a raw pairs file."""

    input: str | None = option(
        None,
        "Raw pairs (the command's IN argument): wsteer PairRecord JSONL, TRL preference JSONL (prompt/chosen/"
        "rejected, plain or conversational), a datasets save_to_disk directory or a Hugging Face dataset id. "
        "Never modified.",
    )
    split: str = option("train", "Split of the input when it is a dataset directory or hub id.")
    out: str | None = option(
        None,
        "Curated JSONL to write (default: curated.jsonl beside the input; required for a hub id). Also "
        "written: <stem>.dropped.jsonl, <stem>.report.md/.json, <stem>.run/.",
    )
    empty: EmptyRule = option(help="Rule 'empty'.", factory=EmptyRule)
    truncated: TruncatedRule = option(help="Rule 'truncated'.", factory=TruncatedRule)
    degenerate: DegenerateRule = option(help="Rule 'degenerate'.", factory=DegenerateRule)
    language: LanguageRule = option(help="Rule 'language'.", factory=LanguageRule)
    refusal: RefusalRule = option(help="Rule 'refusal'.", factory=RefusalRule)
    persona_echo: EchoRule = option(help="Rule 'persona_echo'.", factory=EchoRule)
    length: LengthRule = option(help="Rule 'length'.", factory=LengthRule)
    near_identical: NearIdenticalRule = option(help="Rule 'near_identical'.", factory=NearIdenticalRule)
    abandon_share: float = option(
        0.5,
        "Fail the round when more than this share of pairs was rewritten or "
        "dropped: fix the pair or the template instead.",
    )
    abandon_ignores: list[str] = option(
        help="Rules whose edits and drops do not count toward abandon_share (truncation comes from "
        "max_new_tokens, not from the persona).",
        factory=lambda: ["truncated"],
    )
    force: bool = option(False, "Write the curated pairs even when the round fails the abandon_share check.")
    examples: int = option(2, "Examples per rule in the Markdown report.")

    def __post_init__(self) -> None:
        unknown = sorted(set(self.abandon_ignores) - set(RULE_IDS))
        if unknown:
            raise ValueError(f"abandon_ignores has unknown rule id(s) {unknown}; rule ids: {', '.join(RULE_IDS)}")
        if not 0 <= self.abandon_share <= 1:
            raise ValueError(f"abandon_share must be in [0, 1], got {self.abandon_share}")


# --------------------------------------------------------------------------------------------- rules
@dataclass
class WorkingPair:
    """A pair being curated: the current texts and what has been done to them."""

    line: int
    record: dict
    cho: str
    rej: str
    terms: list[str]
    edited_by: list[str] = field(default_factory=list)

    def get(self, side: str) -> str:
        return self.cho if side == "cho" else self.rej

    def set(self, side: str, text: str) -> None:
        setattr(self, side, text)


@dataclass
class Verdict:
    """What a rule decided for one pair. ``sides`` are the sides that triggered it."""

    action: Literal["keep", "edit", "drop"]
    sides: tuple[str, ...] = ()
    reason: str = ""


KEEP = Verdict("keep")
Rule = Callable[[WorkingPair, CurateConfig], Verdict]


def rule_empty(pair: WorkingPair, cfg: CurateConfig) -> Verdict:
    short = tuple(s for s in SIDES if ts.word_count(pair.get(s)) < cfg.empty.min_words)
    return Verdict("drop", short, f"fewer than {cfg.empty.min_words} word(s)") if short else KEEP


def rule_truncated(pair: WorkingPair, cfg: CurateConfig) -> Verdict:
    finish = pair.record.get("finish") or {}
    cut = tuple(s for s in SIDES if finish.get(s) == "length")
    if not cut or cfg.truncated.action == "keep":
        return KEEP
    if cfg.truncated.action == "drop":
        return Verdict("drop", cut, "hit max_new_tokens")
    edited = []
    for side in cut:
        trimmed = ts.truncate_at_sentence(pair.get(side))
        if ts.word_count(trimmed) < max(1, cfg.empty.min_words):
            return Verdict("drop", (side,), "hit max_new_tokens and has no complete sentence")
        if trimmed != pair.get(side):
            pair.set(side, trimmed)
            edited.append(side)
    return Verdict("edit", tuple(edited), "cut the unfinished last sentence") if edited else KEEP


def rule_degenerate(pair: WorkingPair, cfg: CurateConfig) -> Verdict:
    if not cfg.degenerate.enabled:
        return KEEP
    loops = tuple(s for s in SIDES if ts.is_degenerate(pair.get(s)))
    return Verdict("drop", loops, "repetition loop") if loops else KEEP


def rule_language(pair: WorkingPair, cfg: CurateConfig) -> Verdict:
    if not cfg.language.enabled:
        return KEEP
    langs = {s: ts.guess_language(pair.get(s)) for s in SIDES}
    if "und" not in langs.values() and langs["cho"] != langs["rej"]:
        return Verdict("drop", SIDES, f"cho is {langs['cho']}, rej is {langs['rej']}")
    if cfg.language.match_prompt:
        prompt_lang = ts.guess_language(pair.record.get("prompt", ""))
        off = tuple(s for s in SIDES if "und" not in (prompt_lang, langs[s]) and langs[s] != prompt_lang)
        if off:
            return Verdict("drop", off, f"prompt is {prompt_lang}, answer is {langs[off[0]]}")
    return KEEP


def rule_refusal(pair: WorkingPair, cfg: CurateConfig) -> Verdict:
    if cfg.refusal.action == "keep":
        return KEEP

    def refuses(text: str) -> bool:
        return ts.is_refusal(text) or (cfg.refusal.boilerplate and ts.is_boilerplate(text))

    flags = {s: refuses(pair.get(s)) for s in SIDES}
    if flags["cho"] != flags["rej"]:
        side = "cho" if flags["cho"] else "rej"
        return Verdict("drop", (side,), f"only {side} refuses or opens with AI boilerplate")
    return KEEP


def rule_persona_echo(pair: WorkingPair, cfg: CurateConfig) -> Verdict:
    if not cfg.persona_echo.enabled:
        return KEEP
    edited = []
    for side in SIDES:
        echoes = ts.find_persona_echo(pair.get(side), pair.terms)
        if not echoes:
            continue
        stripped = ts.strip_sentences(pair.get(side), echoes)
        if ts.has_persona_echo(stripped, pair.terms):
            return Verdict("drop", (side,), "persona echo remains after stripping")
        if ts.word_count(stripped) < cfg.persona_echo.min_words_left:
            return Verdict("drop", (side,), "almost nothing left after stripping persona echo")
        pair.set(side, stripped)
        edited.append(side)
    return Verdict("edit", tuple(edited), "stripped persona-echo sentences") if edited else KEEP


def similarity(a: str, b: str) -> float:
    """Word-sequence similarity of two texts in [0, 1] (difflib ratio over lower-cased words)."""
    wa, wb = ts.words(a), ts.words(b)
    if not wa and not wb:
        return 1.0
    return difflib.SequenceMatcher(None, wa, wb, autojunk=False).ratio()


def rule_near_identical(pair: WorkingPair, cfg: CurateConfig) -> Verdict:
    if not cfg.near_identical.enabled:
        return KEEP
    score = similarity(pair.cho, pair.rej)
    if pair.cho.strip() == pair.rej.strip() or score >= cfg.near_identical.threshold:
        return Verdict("drop", SIDES, f"similarity {score:.2f}")
    return KEEP


def rule_length(pair: WorkingPair, cfg: CurateConfig) -> Verdict:
    if not cfg.length.enabled:
        return KEEP
    ratio = cfg.length.max_ratio
    counts = {s: ts.word_count(pair.get(s)) for s in SIDES}
    longer = max(SIDES, key=lambda s: counts[s])
    shorter = "rej" if longer == "cho" else "cho"
    if counts[longer] <= ratio * counts[shorter]:
        return KEEP
    trimmed = ts.truncate_at_sentence(pair.get(longer), max_words=math.floor(ratio * counts[shorter]))
    n = ts.word_count(trimmed)
    if n == 0 or max(n, counts[shorter]) > ratio * min(n, counts[shorter]):
        return Verdict(
            "drop",
            (longer,),
            f"{longer} is {counts[longer]} words vs {counts[shorter]}; no sentence boundary brings it within {ratio}x",
        )
    if n < cfg.length.min_trimmed_words:
        return Verdict(
            "drop",
            (longer,),
            f"{longer} would be trimmed from {counts[longer]} to {n} words, under "
            f"min_trimmed_words={cfg.length.min_trimmed_words}",
        )
    pair.set(longer, trimmed)
    return Verdict("edit", (longer,), f"trimmed {longer} from {counts[longer]} to {n} words")


RULES: dict[str, Rule] = {
    "empty": rule_empty,
    "truncated": rule_truncated,
    "degenerate": rule_degenerate,
    "language": rule_language,
    "refusal": rule_refusal,
    "persona_echo": rule_persona_echo,
    "length": rule_length,
    "near_identical": rule_near_identical,
}
assert tuple(RULES) == RULE_IDS


# --------------------------------------------------------------------------------------------- running
@dataclass
class RuleCounts:
    """What one rule did, in pairs (``cho`` / ``rej``: how often each side triggered it)."""

    checked: int = 0
    edited: int = 0
    dropped: int = 0
    cho: int = 0
    rej: int = 0


@dataclass
class Curation:
    """The outcome of curating a list of records (no I/O)."""

    kept: list[dict]
    dropped: list[dict]
    counts: dict[str, RuleCounts]
    examples: dict[str, list[dict]]
    total: int
    touched: int  # pairs rewritten or dropped by a rule that counts toward abandon_share

    @property
    def touched_share(self) -> float:
        return self.touched / self.total if self.total else 0.0


def terms_for(record: dict, cfg: CurateConfig) -> list[str]:
    """The persona vocabulary of a record's pair (plus the configured extra terms). Pairs that name no personas
    (TRL-format data) have only the extra terms, so persona_echo checks those alone."""
    return record_terms(record, cfg.persona_echo.extra_terms)


def record_terms(record: dict, extra_terms: list[str] | tuple = ()) -> list[str]:
    """Persona words of a record's pos/neg (none when it names no personas) plus ``extra_terms``."""
    personas = [record.get(key) or "" for key in ("pos", "neg")]
    return ts.persona_terms(*personas, extra=extra_terms)


def curate_records(records: list[tuple[int, dict]], cfg: CurateConfig) -> Curation:
    """Apply every rule to ``(line_number, record)`` pairs. Records are not modified; kept ones are copied with
    new cho/rej and a ``curation`` field, dropped ones with ``curation: {source_line, dropped_by, reason, sides}``."""
    counts = {rule_id: RuleCounts() for rule_id in RULE_IDS}
    examples: dict[str, list[dict]] = {rule_id: [] for rule_id in RULE_IDS}
    kept, dropped, touched = [], [], 0
    for line, record in records:
        pair = WorkingPair(line, record, record["cho"], record["rej"], terms_for(record, cfg))
        dropped_by: tuple[str, Verdict] | None = None
        for rule_id, rule in RULES.items():
            before = {s: pair.get(s) for s in SIDES}
            verdict = rule(pair, cfg)
            tally = counts[rule_id]
            tally.checked += 1
            for side in verdict.sides:
                setattr(tally, side, getattr(tally, side) + 1)
            if verdict.action == "edit":
                tally.edited += 1
                pair.edited_by.append(rule_id)
                _add_example(examples[rule_id], cfg, line, verdict, before, pair)
            elif verdict.action == "drop":
                tally.dropped += 1
                _add_example(examples[rule_id], cfg, line, verdict, before, None)
                dropped_by = (rule_id, verdict)
                break
        counted = set(pair.edited_by) - set(cfg.abandon_ignores)
        if dropped_by is not None:
            touched += dropped_by[0] not in cfg.abandon_ignores or bool(counted)
            rule_id, verdict = dropped_by
            dropped.append(
                {
                    **record,
                    "curation": {
                        "source_line": line,
                        "dropped_by": rule_id,
                        "reason": verdict.reason,
                        "sides": list(verdict.sides),
                        "rules": pair.edited_by,
                    },
                }
            )
        else:
            touched += bool(counted)
            kept.append(_curated_line(pair))
    return Curation(kept, dropped, counts, examples, len(records), touched)


def _curated_line(pair: WorkingPair) -> dict:
    record = pair.record
    return {
        **record,
        "cho": pair.cho,
        "rej": pair.rej,
        "curation": {
            "source_line": pair.line,
            "rules": pair.edited_by,
            "len_before": {s: ts.word_count(record[s]) for s in SIDES},
            "len_after": {s: ts.word_count(pair.get(s)) for s in SIDES},
        },
    }


def _add_example(
    bucket: list[dict], cfg: CurateConfig, line: int, verdict: Verdict, before: dict, after: WorkingPair | None
) -> None:
    if len(bucket) >= cfg.examples:
        return
    side = verdict.sides[0] if verdict.sides else "cho"
    example = {"line": line, "reason": verdict.reason, "side": side, "before": before[side]}
    if after is not None:
        example["after"] = after.get(side)
    bucket.append(example)


# --------------------------------------------------------------------------------------------- statistics
def side_statistics(records: list[dict], extra_terms: list[str] | tuple = ()) -> dict[str, dict[str, float]]:
    """Per side: pairs, mean / median words, refusal, hedging (per 100 words), persona echo and leak rates."""
    out: dict[str, dict[str, float]] = {}
    for side in SIDES:
        texts = [(r[side], record_terms(r, extra_terms)) for r in records]
        lengths = [ts.word_count(t) for t, _ in texts]
        n = len(texts)
        out[side] = {
            "pairs": n,
            "words_mean": statistics.fmean(lengths) if n else 0.0,
            "words_median": float(statistics.median(lengths)) if n else 0.0,
            "refusal_rate": sum(ts.is_refusal(t) for t, _ in texts) / n if n else 0.0,
            "hedging_per_100w": statistics.fmean(ts.hedging_rate(t) for t, _ in texts) if n else 0.0,
            "echo_rate": sum(ts.has_persona_echo(t, terms) for t, terms in texts) / n if n else 0.0,
            "leak_rate": sum(ts.leaks(t, terms) for t, terms in texts) / n if n else 0.0,
        }
    return out


# --------------------------------------------------------------------------------------------- files
@dataclass
class CurationResult:
    """Where a curation pass wrote its outputs and what it found."""

    input: Path
    out: Path
    dropped_path: Path
    report_md: Path
    report_json: Path
    run_dir: Path
    report: dict
    abandoned: bool
    written: bool

    def summary(self) -> str:
        """One line for the CLI."""
        r = self.report
        target = str(self.out) if self.written else "(curated pairs NOT written)"
        return (
            f"pairs curate: {r['pairs_out']}/{r['pairs_in']} pairs kept, {r['pairs_dropped']} dropped, "
            f"{r['pairs_edited']} rewritten -> {target}; report {self.report_md}"
        )

    def abandon_message(self) -> str:
        """Why the round failed and what to do."""
        r = self.report
        if not r["pairs_out"]:
            return (
                f"no pair survived curation (see {self.report_md} for what dropped them): fix the pair, the "
                "template or the sampling settings (e.g. a larger max_new_tokens) and generate again"
            )
        return (
            f"{r['touched']} of {r['pairs_in']} pairs ({r['touched_share']:.0%}) were rewritten or dropped, "
            f"more than abandon_share={r['abandon_share']:.0%}: abandon this round and fix the persona pair "
            f"or the template (see {self.report_md}), or pass --force to keep the curated pairs anyway"
        )


def default_out(input_path: Path) -> Path:
    """curated.jsonl beside the input."""
    return input_path.with_name("curated.jsonl")


def resolve_paths(cfg: CurateConfig) -> tuple[Path, Path]:
    """The input and the curated output; refuses a missing input, an output that is the input, and a hub dataset
    without ``out``."""
    if not cfg.input:
        raise ConfigError("no input file", where="IN", fix="run `wsteer pairs curate RAW.jsonl --out CURATED.jsonl`")
    source = Path(cfg.input)
    if not cfg.out and not source.exists():
        raise ConfigError(
            f"{cfg.input} is not a local file or directory, so there is no 'beside the input' to write to",
            where="--out",
            fix="pass --out CURATED.jsonl",
        )
    out = Path(cfg.out) if cfg.out else default_out(source)
    if out.resolve() == source.resolve():
        raise ConfigError(
            f"--out {out} is the input file; the raw pairs are never modified",
            where="--out",
            fix="write the curated pairs to another file, e.g. curated.jsonl",
        )
    return source, out


def read_input(source: Path, split: str) -> list[tuple[int, dict]]:
    """``(line or row, record)`` of every pair in ``source`` (any format :mod:`wsteer.pair_sources` reads)."""
    records = read_pair_source(source, split)
    if not records:
        raise DataError(f"{source} holds no pairs", where=str(source), fix="generate pairs first")
    return [(int(re.split(r"[:#]", r["_where"])[-1]), strip_where(r)) for r in records]


def curate_file(cfg: CurateConfig) -> CurationResult:
    """Curate ``cfg.input`` into ``cfg.out`` (+ dropped pairs, report, run record). The input is only read; every
    output is written atomically. When the round fails the abandon check and ``cfg.force`` is off, the report and
    the dropped pairs are written but the curated pairs are not."""
    source, out = resolve_paths(cfg)
    input_hash = sha256_path(source) if source.exists() else None
    records = read_input(source, cfg.split)
    curation = curate_records(records, cfg)
    # No survivors fails too: an empty training file is never what the user wants, whatever the cause.
    abandoned = curation.touched_share > cfg.abandon_share or not curation.kept
    write_output = not abandoned or cfg.force
    paths = {
        "dropped": out.with_name(out.stem + ".dropped.jsonl"),
        "report_md": out.with_name(out.stem + ".report.md"),
        "report_json": out.with_name(out.stem + ".report.json"),
    }
    report = build_report(
        curation,
        cfg,
        source,
        out,
        abandoned,
        write_output,
        before=side_statistics([r for _, r in records], cfg.persona_echo.extra_terms),
        after=side_statistics(curation.kept, cfg.persona_echo.extra_terms),
    )
    if write_output:
        write_jsonl(out, curation.kept)
    write_jsonl(paths["dropped"], curation.dropped)
    write_json(paths["report_json"], report)
    atomic_write_text(paths["report_md"], render_markdown(report, curation, cfg))
    if input_hash and sha256_path(source) != input_hash:  # belt and braces: curation must never touch the input
        raise DataError(f"{source} changed while it was curated", where=str(source), fix="rerun curation")
    run_dir = _write_run_record(cfg, source, out, curation, abandoned, write_output)
    files = (paths["dropped"], paths["report_md"], paths["report_json"], run_dir)
    return CurationResult(source, out, *files, report, abandoned, write_output)


def _write_run_record(
    cfg: CurateConfig, source: Path, out: Path, curation: Curation, abandoned: bool, written: bool
) -> Path:
    """config.yaml + manifest.json of the pass in ``<stem>.run/`` beside the output; returns that directory."""
    from wsteer.pairs.generate import run_dir_for

    from wsteer.manifest import write_run_record

    run_dir = run_dir_for(out)
    write_run_record(
        run_dir,
        STAGE,
        cfg,
        inputs={"raw": source},
        extra={
            "out": str(out) if written else None,
            "pairs_in": curation.total,
            "pairs_out": len(curation.kept),
            "abandoned": abandoned,
        },
        launch=f"wsteer pairs curate {source} --out {out} --config {run_dir / 'config.yaml'}",
    )
    return run_dir


def build_report(
    curation: Curation,
    cfg: CurateConfig,
    source: Path,
    out: Path,
    abandoned: bool,
    written: bool,
    before: dict,
    after: dict,
) -> dict:
    """The JSON report: counts per rule, per-side statistics before/after, the abandon verdict."""
    edited = sum(1 for r in curation.kept if r["curation"]["rules"])
    return {
        "input": str(source),
        "output": str(out) if written else None,
        "pairs_in": curation.total,
        "pairs_out": len(curation.kept),
        "pairs_dropped": len(curation.dropped),
        "pairs_edited": edited,
        "touched": curation.touched,
        "touched_share": curation.touched_share,
        "abandon_share": cfg.abandon_share,
        "abandon_ignores": list(cfg.abandon_ignores),
        "abandoned": abandoned,
        "forced": abandoned and written,
        "rules": {rule_id: dataclasses.asdict(c) for rule_id, c in curation.counts.items()},
        "sides": {"before": before, "after": after},
    }


def render_markdown(report: dict, curation: Curation, cfg: CurateConfig) -> str:
    """The human-readable report."""
    r = report
    verdict = "**FAILED — abandon this round**: fix the persona pair or the template" if r["abandoned"] else "passed"
    if r["forced"]:
        verdict += " (written anyway with --force)"
    ignored = ", ".join(r["abandon_ignores"]) or "nothing"
    lines = [
        "# Curation report",
        "",
        f"- input: `{r['input']}`",
        f"- output: `{r['output']}`" if r["output"] else "- output: not written",
        f"- pairs: {r['pairs_in']} in, {r['pairs_out']} kept, {r['pairs_dropped']} dropped, "
        f"{r['pairs_edited']} kept pairs rewritten",
        f"- rewritten or dropped (counted toward the abandon check, ignoring {ignored}): {r['touched']} = "
        f"{r['touched_share']:.1%} (limit {r['abandon_share']:.0%}) — {verdict}",
        "",
        "## Rules",
        "",
        "| rule | checked | rewritten | dropped | by cho | by rej |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for rule_id, c in r["rules"].items():
        lines.append(f"| {rule_id} | {c['checked']} | {c['edited']} | {c['dropped']} | {c['cho']} | {c['rej']} |")
    lines += [
        "",
        "## Sides before / after",
        "",
        "| statistic | cho before | rej before | cho − rej before | cho after | rej after | cho − rej after |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    before, after = r["sides"]["before"], r["sides"]["after"]
    for key in ("pairs", "words_mean", "words_median", "refusal_rate", "hedging_per_100w", "echo_rate", "leak_rate"):
        cells = []
        for stats in (before, after):
            cho, rej = stats["cho"][key], stats["rej"][key]
            cells += [_fmt(cho), _fmt(rej), _fmt(cho - rej)]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    shown = {k: v for k, v in curation.examples.items() if v}
    if shown:
        lines += ["", "## Examples", ""]
        for rule_id, items in shown.items():
            for item in items:
                lines.append(f"- **{rule_id}** (line {item['line']}, {item['side']}): {item['reason']}")
                lines.append(f"  - before: {_quote(item['before'])}")
                if "after" in item:
                    lines.append(f"  - after: {_quote(item['after'])}")
    return "\n".join(lines) + "\n"


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3f}"


def _quote(text: str, limit: int = 240) -> str:
    flat = " ".join(text.split())
    return to_json(flat[:limit] + ("…" if len(flat) > limit else ""))
