"""Intervals and paired tests against independent references (scipy)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from maskrec.metrics import bootstrap_interval, paired_test


def test_bootstrap_interval_matches_scipy_percentile_bootstrap():
    values = np.random.default_rng(1).random(400)
    low, high = bootstrap_interval(values, samples=4000, confidence=0.95, seed=0)
    reference = stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=4000,
        confidence_level=0.95,
        method="percentile",
        random_state=0,
    )
    assert low == pytest.approx(reference.confidence_interval.low, abs=0.004)
    assert high == pytest.approx(reference.confidence_interval.high, abs=0.004)
    assert low < values.mean() < high


def test_paired_test_detects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(0)
    base = rng.random(300)
    better = paired_test(base + 0.05, base, samples=2000, confidence=0.95, seed=0)
    assert better["mean_difference"] == pytest.approx(0.05)
    assert (
        better["ci_low"] > 0
        and better["p_bootstrap"] < 0.001
        and better["p_wilcoxon"] < 0.001
    )
    shuffled = base[rng.permutation(300)]
    same = paired_test(base, shuffled, samples=2000, confidence=0.95, seed=0)
    assert same["ci_low"] < 0 < same["ci_high"] and same["p_bootstrap"] > 0.05
    assert same["p_wilcoxon"] == pytest.approx(stats.wilcoxon(base - shuffled).pvalue)


def test_identical_scores_give_p_one():
    result = paired_test(np.ones(10), np.ones(10), samples=200, confidence=0.95, seed=0)
    assert result["mean_difference"] == 0 and result["p_wilcoxon"] == 1.0
