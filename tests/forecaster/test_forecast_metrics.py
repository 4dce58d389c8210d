"""Accuracy measures on cases small enough to compute by hand.

(Named test_forecast_metrics.py: tests/ingestor/test_metrics.py already owns the module name
test_metrics in this suite's rootdir-based imports.)
"""

import math

import numpy as np
import pytest

from services.forecaster import metrics


def test_pinball_loss_charges_q_below_and_one_minus_q_above():
    # y = 10: forecast 6 is 4 under (cost q·4), forecast 13 is 3 over (cost (1−q)·3).
    assert metrics.pinball_loss(10, 6, 0.9) == pytest.approx(3.6)
    assert metrics.pinball_loss(10, 13, 0.9) == pytest.approx(0.3)
    assert metrics.pinball_loss(10, 10, 0.3) == 0
    assert metrics.pinball_loss([np.nan, 1.0], [5.0, 0.0], 0.5).tolist() == [0.0, 0.5]


def test_weighted_quantile_loss_by_hand():
    y = np.array([0.0, 2.0, 4.0])
    forecasts = np.array([[0.0, 1.0], [1.0, 2.0], [1.0, 5.0]])  # quantiles 0.1 and 0.9
    # q0.1: 0 + 0.1·1 + 0.1·3 = 0.4 → 2·0.4 = 0.8; q0.9: 0.1·1 + 0 + 0.1·1 = 0.2 → 0.4
    # numerator = mean(0.8, 0.4) = 0.6; Σ|y| = 6
    assert metrics.quantile_loss(y, forecasts, [0.1, 0.9]) == pytest.approx(0.6)
    assert metrics.weighted_quantile_loss(y, forecasts, [0.1, 0.9]) == pytest.approx(0.1)


def test_zero_forecast_scores_exactly_one_on_quantiles_point_one_to_point_nine():
    rng = np.random.default_rng(1)
    y = rng.poisson(0.7, size=(20, 12)).astype(float)
    levels = [round(0.1 * k, 1) for k in range(1, 10)]
    zeros = np.zeros((*y.shape, len(levels)))
    assert metrics.weighted_quantile_loss(y, zeros, levels) == pytest.approx(1.0)


def test_weighted_quantile_loss_masks_nan_and_is_nan_without_demand():
    forecasts = np.array([[1.0], [1.0], [7.0]])
    # the NaN cell (forecast 7) does not count: 2·(0.5·1 + 0.5·1) / Σ|y| = 2 / 2
    assert metrics.weighted_quantile_loss([0.0, 2.0, np.nan], forecasts, [0.5]) == 1.0
    assert math.isnan(metrics.weighted_quantile_loss([0.0, 0.0], [[1.0], [1.0]], [0.5]))


def test_quantile_loss_by_row_reduces_every_axis_but_the_first():
    y = np.array([[[1.0, 0.0]], [[3.0, np.nan]]])  # (series, origin, step)
    forecasts = np.zeros((2, 1, 2, 1))
    # row 0: 2·0.5·1 = 1; row 1: 2·0.5·3 = 3 (the NaN step is masked)
    assert metrics.quantile_loss_by_row(y, forecasts, [0.5]).tolist() == [1.0, 3.0]
    assert metrics.weighted_quantile_loss_by_row(y, forecasts, [0.5]).tolist() == [1.0, 1.0]


def test_mase_uses_the_seasonal_naive_in_sample_scale():
    insample = [1.0, 2.0, 3.0, 5.0, 2.0, 6.0]  # lag 2: |3−1|, |5−2|, |2−3|, |6−5| → mean 1.75
    assert metrics.mase_scale(insample, 2) == pytest.approx(1.75)
    # errors 1 and 2.5 → mean 1.75 → MASE 1
    assert metrics.mase([4.0, 0.5], [3.0, 3.0], insample, 2) == pytest.approx(1.0)


def test_mase_is_undefined_for_zero_or_missing_scale():
    assert math.isnan(metrics.mase([1.0], [0.0], [2.0, 2.0, 2.0], 1))  # constant: scale 0
    assert math.isnan(metrics.mase([1.0], [0.0], [2.0], 12))  # shorter than a season
    assert math.isnan(metrics.mase_scale([1.0, np.nan, 2.0], 12))


def test_mase_scale_by_row_skips_nan_pairs():
    history = np.array([[1.0, 2.0, 4.0, np.nan], [np.nan, 0.0, 0.0, 0.0]])
    # row 0, lag 1: |2−1|, |4−2| (the NaN pair skipped) → 1.5; row 1: zeros → 0
    assert metrics.mase_scale_by_row(history, 1).tolist() == [1.5, 0.0]


def test_bias_wape_and_coverage_by_hand():
    y = np.array([2.0, 0.0, 4.0, np.nan])
    mean = np.array([3.0, 1.0, 2.0, 100.0])
    # bias: (1 + 1 − 2) / 6 = 0; WAPE: (1 + 1 + 2) / 6
    assert metrics.bias(y, mean) == pytest.approx(0.0)
    assert metrics.bias([2.0, 2.0], [3.0, 3.0]) == pytest.approx(0.5)
    assert metrics.wape(y, mean) == pytest.approx(4 / 6)
    lower = np.array([0.0, 0.0, 5.0, 0.0])
    upper = np.array([2.0, 0.0, 9.0, 0.0])
    # 2 in [0, 2] (inclusive), 0 in [0, 0], 4 not in [5, 9]; NaN not counted → 2/3
    assert metrics.coverage(y, lower, upper) == pytest.approx(2 / 3)
    assert math.isnan(metrics.bias([0.0], [1.0]))
    assert math.isnan(metrics.wape([0.0], [1.0]))
    assert math.isnan(metrics.coverage([np.nan], [0.0], [1.0]))


def test_quantile_loss_rejects_a_wrong_number_of_quantiles():
    with pytest.raises(ValueError, match="quantiles"):
        metrics.quantile_loss([1.0], [[1.0, 2.0]], [0.5])
