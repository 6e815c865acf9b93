import math

import numpy as np
import pytest

from wsteer.stats import bootstrap_ci, paired_difference, slope, spearman


def test_bootstrap_ci_covers_known_mean():
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(40):
        sample = rng.normal(3.0, 1.0, size=60)
        ci = bootstrap_ci(sample, seed=trial, n_resamples=500)
        covered += ci["lo"] <= 3.0 <= ci["hi"]
        assert ci["lo"] < ci["mean"] < ci["hi"]
    assert covered >= 34  # ~95% nominal; 34/40 allows sampling noise


def test_bootstrap_ci_width_matches_standard_error():
    sample = np.random.default_rng(1).normal(0, 2.0, size=400)
    ci = bootstrap_ci(sample)
    assert ci["hi"] - ci["lo"] == pytest.approx(2 * 1.96 * 2.0 / math.sqrt(400), rel=0.2)


def test_degenerate_samples():
    assert bootstrap_ci([])["n"] == 0 and math.isnan(bootstrap_ci([])["mean"])
    assert bootstrap_ci([5.0]) == {"mean": 5.0, "lo": 5.0, "hi": 5.0, "n": 1}
    assert bootstrap_ci([1.0, float("nan"), 1.0])["n"] == 2


def test_paired_difference_and_sign_test():
    a = np.arange(20, dtype=float) + 1.0
    b = np.arange(20, dtype=float)
    result = paired_difference(a, b)
    assert result["mean"] == pytest.approx(1.0) and result["wins"] == 20 and result["sign_p"] < 1e-5
    tie = paired_difference([1, 2, 3], [1, 2, 3])
    assert tie["ties"] == 3 and tie["sign_p"] == 1.0
    with pytest.raises(ValueError):
        paired_difference([1], [1, 2])


def test_spearman_and_slope():
    assert spearman([-2, -1, 0, 1, 2], [0.1, 0.5, 0.4, 2, 3])["rho"] == pytest.approx(0.9)
    assert math.isnan(spearman([1, 2], [1, 2])["rho"])
    assert slope([0, 1, 2], [1, 3, 5]) == pytest.approx(2.0)


def test_bootstrap_statistic_resamples_rows_jointly_and_drops_incomplete_rows():
    from wsteer.stats import bootstrap_statistic

    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = x + 1.0 + rng.normal(scale=0.01, size=40)

    def difference(a, b, axis=-1):
        return np.mean(b, axis=axis) - np.mean(a, axis=axis)

    joint = bootstrap_statistic([x, y], difference, seed=1)
    assert joint["n"] == 40 and joint["mean"] == pytest.approx(float(np.mean(y - x)))
    # rows move together, so the shared spread of x cancels: the CI is as narrow as the 0.01 noise allows
    assert joint["hi"] - joint["lo"] < 0.02
    assert bootstrap_ci(y - x, seed=1)["hi"] - bootstrap_ci(y - x, seed=1)["lo"] < 0.02
    x_with_gap = x.copy()
    x_with_gap[5] = np.nan
    assert bootstrap_statistic([x_with_gap, y], difference)["n"] == 39
    # one column is the plain bootstrap of the mean
    assert bootstrap_statistic([x], np.mean, seed=3) == bootstrap_ci(x, seed=3)
