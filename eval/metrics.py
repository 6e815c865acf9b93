"""Aggregating per-generation metrics: per-arm means with bootstrap CIs, and the dose-response check.

The dose-response check is the seed's warning made mechanical: across the adapter arms, how fast does each metric
move with α, in units of its own within-arm spread? If a nuisance (length, refusal, hedging, …) moves more than the
trait, the adapter may have learned that nuisance instead, and the sweep flags it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable, Sequence

import numpy as np

from wsteer.stats import bootstrap_ci, slope, spearman

TRAIT_METRIC = "plr"
NUISANCE_METRICS = (
    "tokens",
    "truncated",
    "refusal",
    "hedging",
    "confidence",
    "formality",
    "distinct_2",
    "echo",
    "perplexity",
    "kl",
)


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
