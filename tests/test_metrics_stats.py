"""Intervals, paired tests and the FDR adjustment, each against an independent reference:
a hand-written bootstrap, an exact enumeration of sign patterns, hand-computed BH."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from maskrec import metrics
from maskrec.metrics import (
    bootstrap_intervals,
    fdr_adjust,
    paired_comparison,
    sign_flip_p_value,
)


def test_bootstrap_intervals_match_a_hand_written_percentile_bootstrap():
    rng = np.random.default_rng(1)
    values = np.stack([rng.random(400), rng.random(400) ** 3])
    low, high = bootstrap_intervals(values, samples=4000, confidence=0.9, seed=0)
    # Independent reference: resample users with numpy, 20,000 times, take percentiles.
    draws = np.random.default_rng(7).integers(0, 400, size=(20_000, 400))
    means = values[:, draws].mean(axis=2)  # (metrics, resamples)
    np.testing.assert_allclose(low, np.quantile(means, 0.05, axis=1), atol=0.004)
    np.testing.assert_allclose(high, np.quantile(means, 0.95, axis=1), atol=0.004)
    assert (low < values.mean(axis=1)).all() and (values.mean(axis=1) < high).all()


def test_bootstrap_memory_is_bounded_by_batches_not_by_resamples(monkeypatch):
    values = np.random.default_rng(2).random((3, 500))
    reference = bootstrap_intervals(values, samples=300, confidence=0.95, seed=4)
    # 1,500 values a batch: one resample at a time, same answer.
    monkeypatch.setattr(metrics, "BATCH_ELEMENTS", 1500)
    batched = bootstrap_intervals(values, samples=300, confidence=0.95, seed=4)
    np.testing.assert_allclose(batched, reference)


def test_bootstrap_of_one_or_no_user():
    low, high = bootstrap_intervals(np.array([[0.5]]), 100, 0.95, 0)
    assert low.tolist() == high.tolist() == [0.5]
    assert np.isnan(bootstrap_intervals(np.zeros((1, 0)), 100, 0.95, 0)[0]).all()


def test_sign_flip_p_value_equals_exact_enumeration():
    differences = np.array([0.3, -0.1, 0.5, 0.2, 0.4, -0.2, 0.1, 0.6, 0.0, -0.3])
    observed = abs(differences.mean())
    flips = np.array(list(itertools.product([1, -1], repeat=len(differences))))
    as_extreme = np.abs((flips * differences).mean(axis=1)) >= observed - 1e-12
    assert sign_flip_p_value(differences, 9999, 0) == pytest.approx(as_extreme.mean())


def test_sign_flip_test_detects_a_shift_and_not_a_null():
    rng = np.random.default_rng(0)
    shifted = rng.normal(0.05, 0.2, size=400)  # t ~ 5: p far below 0.001
    assert sign_flip_p_value(shifted, 999, 0) <= 0.002
    null = rng.normal(0.0, 0.2, size=400)
    p_values = [sign_flip_p_value(rng.permutation(null) * rng.choice([-1, 1], 400), 199, s) for s in range(20)]  # fmt: skip
    assert np.mean(np.array(p_values) < 0.05) <= 0.2  # rejects rarely under the null
    assert sign_flip_p_value(np.zeros(5), 99, 0) == 1.0
    assert np.isnan(sign_flip_p_value(np.zeros(0), 99, 0))


def test_paired_comparison_reports_difference_interval_and_p():
    rng = np.random.default_rng(3)
    base = rng.random(300)
    better = paired_comparison(base + rng.normal(0.05, 0.1, 300), base, 1000, 999, 0.95, 0)  # fmt: skip
    assert better["users"] == 300 and better["mean_difference"] > 0
    assert 0 < better["ci_low"] < better["mean_difference"] < better["ci_high"]
    assert better["p_value"] <= 0.002


def test_fdr_adjustment_is_benjamini_hochberg():
    p = [0.01, 0.04, 0.03, 0.20, float("nan")]
    # By hand: sorted 0.01, 0.03, 0.04, 0.20 with m = 4 -> 0.04, 0.0533, 0.0533, 0.20
    # after the step-up minimum; the NaN row has no users and is not a comparison.
    adjusted = fdr_adjust(p)
    assert adjusted[:4] == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.20])
    assert np.isnan(adjusted[4])
    assert fdr_adjust([]) == []
