"""Aggregating per-generation metrics: per-arm means with bootstrap CIs, and the dose-response check.

The dose-response check is the seed's warning made mechanical: across the adapter arms, how fast does each metric
move with α, in units of its own within-arm spread? If a nuisance (length, refusal, hedging, …) moves more than the
trait, the adapter may have learned that nuisance instead, and the sweep flags it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

import numpy as np

from wsteer.stats import bootstrap_ci, slope, spearman


@dataclass(frozen=True)
class Metric:
    """One per-answer (or per held-out pair) measurement of an arm.

    ``kind``: ``trait`` (the judge-free trait score), ``probe`` (the second trait measure: a behavioural probe
    suite, per item, :mod:`wsteer.eval.probe`), ``judge`` (an LLM judge's verdict on each answer against the base's
    answer to the same prompt), ``margin`` (held-out preference margin, per pair, not per
    answer), ``nuisance`` (what must not move more than the trait: the dose-response check) or ``diagnostic``.
    ``source``: what computes it — ``model`` (:mod:`wsteer.eval.scoring`), ``text``
    (:func:`wsteer.textstats.text_metrics`), ``generation`` (the decoder), ``heldout`` (held-out pairs), ``probe``
    (probe items) or ``judge`` (an LLM judge).
    ``higher``: what a higher value means. ``ab``: compared pair by pair in A/B; ``table``: a column of the
    sweep report's table.
    """

    name: str
    label: str
    kind: Literal["trait", "probe", "judge", "margin", "nuisance", "diagnostic"]
    source: Literal["model", "text", "generation", "heldout", "probe", "judge"]
    higher: str
    ab: bool = True
    table: bool = True


# The registry, in the order the summaries, tables and A/B rows list the metrics.
METRICS: tuple[Metric, ...] = (
    Metric("plr", "trait: persona log-likelihood ratio (pos − neg)", "trait", "model", "reads more like pos"),
    Metric("probe", "probe: log p(true) − log p(false)", "probe", "probe", "prefers the true answer more", ab=False),
    Metric("judge", "judge: more pos than the base (+1) / less (−1)", "judge", "judge", "judged more pos", ab=False),
    Metric("margin", "held-out preference margin", "margin", "heldout", "prefers cho over rej more", ab=False),
    Metric("tokens", "length (tokens)", "nuisance", "generation", "longer"),
    Metric("truncated", "share cut at max_new_tokens", "nuisance", "generation", "more answers cut", ab=False),
    Metric("words", "length (words)", "diagnostic", "text", "longer", ab=False, table=False),
    Metric("refusal", "refusal rate", "nuisance", "text", "refuses more"),
    Metric("hedging", "hedges / 100 words", "nuisance", "text", "hedges more"),
    Metric("confidence", "confidence markers / 100 words", "nuisance", "text", "sounds surer"),
    Metric("formality", "formality (register proxy)", "nuisance", "text", "more formal"),
    Metric("distinct_2", "distinct-2", "nuisance", "text", "less repetitive"),
    Metric("degenerate", "degenerate-text rate", "diagnostic", "text", "more broken text", ab=False, table=False),
    Metric("echo", "persona-echo rate", "nuisance", "text", "restates the persona more"),
    Metric("leak", "persona-word leak rate", "diagnostic", "text", "uses persona words more"),
    Metric("perplexity", "base-model perplexity", "nuisance", "model", "less fluent to the base model"),
    Metric("kl", "KL to base (nats/token)", "nuisance", "model", "further from the base model"),
)
METRIC_BY_NAME = {m.name: m for m in METRICS}

TRAIT_METRIC = next(m.name for m in METRICS if m.kind == "trait")
PROBE_METRIC = next(m.name for m in METRICS if m.kind == "probe")
JUDGE_METRIC = next(m.name for m in METRICS if m.kind == "judge")
NUISANCE_METRICS = tuple(m.name for m in METRICS if m.kind == "nuisance")
ALL_METRICS = tuple(m.name for m in METRICS)  # what a sweep summarises per arm
AB_METRICS = tuple(m.name for m in METRICS if m.ab)  # what A/B compares pair by pair
TABLE_METRICS = tuple(m.name for m in METRICS if m.table)  # the sweep report's table columns
METRIC_LABELS = {m.name: m.label for m in METRICS}


def summarize_arms(rows: Sequence[dict], arms: Sequence[dict], metrics: Iterable[str], seed: int = 0) -> list[dict]:
    """Each arm (``{"name", "kind", "alpha", "persona"}``) with ``metrics``: ``{metric: {"mean","lo","hi","n"}}``.

    ``rows`` are per-generation dicts with an ``arm`` name and metric values; rows without a metric are skipped.
    """
    by_arm: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_arm[row["arm"]].append(row)
    out = []
    for arm in arms:
        arm_rows = by_arm.get(arm["name"], [])
        summary = {m: bootstrap_ci([r[m] for r in arm_rows if r.get(m) is not None], seed=seed) for m in metrics}
        out.append({**arm, "metrics": {m: s for m, s in summary.items() if s["n"]}})
    return out


def pooled_within_sd(groups: Sequence[Sequence[float]]) -> float:
    """Pooled within-group standard deviation (NaN if no group has two finite values)."""
    num, dof = 0.0, 0
    for group in groups:
        values = np.asarray([v for v in group if v is not None and math.isfinite(v)], dtype=float)
        if values.size >= 2:
            num += float(((values - values.mean()) ** 2).sum())
            dof += values.size - 1
    return math.sqrt(num / dof) if dof else math.nan


def standardised_slope(alphas: Sequence[float], values: Sequence[float]) -> dict[str, float]:
    """Least-squares slope of values on α, and that slope in within-arm standard deviations per unit α."""
    raw = slope(alphas, values)
    groups: dict[float, list[float]] = defaultdict(list)
    for a, v in zip(alphas, values):
        groups[a].append(v)
    sd = pooled_within_sd(list(groups.values()))
    if not math.isfinite(raw):
        std = math.nan
    elif sd == 0 or not math.isfinite(sd):
        std = 0.0 if raw == 0 else math.copysign(math.inf, raw)
    else:
        std = raw / sd
    return {"slope": raw, "std_slope": std, "within_sd": sd}


def dose_response(rows: Sequence[dict], trait: str = TRAIT_METRIC, nuisances: Sequence[str] = NUISANCE_METRICS) -> dict:
    """Spearman ρ of the trait vs α and each metric's standardised slope over the adapter-arm rows.

    Flags every nuisance whose |standardised slope| exceeds the trait's. Rows need ``alpha`` and metric values.
    """
    adapter_rows = [r for r in rows if r.get("alpha") is not None]

    def series(metric: str) -> tuple[list[float], list[float]]:
        pairs = [
            (r["alpha"], r[metric]) for r in adapter_rows if r.get(metric) is not None and math.isfinite(r[metric])
        ]
        return [a for a, _ in pairs], [v for _, v in pairs]

    trait_alphas, trait_values = series(trait)
    trait_slope = standardised_slope(trait_alphas, trait_values)
    slopes, flags = {}, []
    for metric in nuisances:
        alphas, values = series(metric)
        if len(set(alphas)) < 2:
            continue
        info = standardised_slope(alphas, values)
        slopes[metric] = info
        if math.isfinite(trait_slope["std_slope"]) and abs(info["std_slope"]) > abs(trait_slope["std_slope"]):
            flags.append(
                f"{metric} moves more than the trait with α ({info['std_slope']:+.3g} vs "
                f"{trait_slope['std_slope']:+.3g} within-arm SDs per unit α): the adapter may encode "
                f"{metric} rather than the trait"
            )
    return {
        "trait": trait,
        "spearman": spearman(trait_alphas, trait_values),
        "trait_slope": trait_slope,
        "slopes": slopes,
        "flags": flags,
    }
