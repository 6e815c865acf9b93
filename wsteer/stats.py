"""Small statistics used by the screen and eval: bootstrap CIs, paired differences, sign test, Spearman.

Thin wrappers over scipy.stats that handle the small and degenerate samples a 2-core demo produces (n < 2,
constant data, NaNs) and return plain dicts that serialise to JSON.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np


def bootstrap_statistic(
    columns: Sequence[Sequence[float]],
    statistic: Callable[..., Any],
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """``statistic`` of equally long columns with a percentile-bootstrap CI: ``{"mean", "lo", "hi", "n"}``.

    Rows (the i-th value of every column) are resampled together, and a row with any non-finite value is dropped.
    ``statistic(*columns, axis=-1)`` must be vectorised like ``np.mean``; ``"mean"`` is its value on the data. With
    fewer than two rows, or constant columns, lo = hi = that value.
    """
    from scipy import stats

    data = np.atleast_2d(np.asarray(columns, dtype=float))  # [k, n]
    data = data[:, np.all(np.isfinite(data), axis=0)]
    n = int(data.shape[1])
    if n == 0:
        return {"mean": math.nan, "lo": math.nan, "hi": math.nan, "n": 0}
    point = float(statistic(*data, axis=-1))
    if n < 2 or np.all(data == data[:, :1]):
        return {"mean": point, "lo": point, "hi": point, "n": n}
    result = stats.bootstrap(
        tuple(data),
        statistic,
        paired=len(data) > 1,  # one column: the plain one-sample bootstrap
        vectorized=True,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return {"mean": point, "lo": float(low), "hi": float(high), "n": n}


def bootstrap_ci(
    values: Sequence[float], confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Mean with a percentile-bootstrap confidence interval: ``{"mean", "lo", "hi", "n"}``.

    Non-finite values are dropped. With fewer than two values, or constant values, lo = hi = mean.
    """
    return bootstrap_statistic([values], np.mean, confidence, n_resamples, seed)


def paired_difference(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Mean of ``a - b`` over pairs with a bootstrap CI and a two-sided sign test.

    Pairs where either side is not finite are dropped. Returns ``{"mean", "lo", "hi", "n", "wins", "losses",
    "ties", "sign_p"}`` (wins = pairs where a > b).
    """
    from scipy import stats

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.size} vs {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    diff = x[keep] - y[keep]
    summary = bootstrap_ci(diff, confidence, n_resamples, seed)
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    ties = int(diff.size - wins - losses)
    p_value = stats.binomtest(wins, wins + losses, 0.5).pvalue if wins + losses else 1.0
    return {**summary, "wins": wins, "losses": losses, "ties": ties, "sign_p": float(p_value)}


def spearman(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Spearman rank correlation ``{"rho", "p", "n"}`` over pairs where both values are finite."""
    from scipy import stats

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return {"rho": math.nan, "p": math.nan, "n": int(a.size)}
    result = stats.spearmanr(a, b)
    return {"rho": float(result.statistic), "p": float(result.pvalue), "n": int(a.size)}


def slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of y on x over finite pairs (NaN if x is constant or n < 2)."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 2 or np.all(a == a[0]):
        return math.nan
    return float(np.polyfit(a, b, 1)[0])
