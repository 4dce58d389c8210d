"""Backtest plan and model selection on quantile loss."""

import numpy as np
import pandas as pd
import pytest

from services.forecaster.models import forecast_panel, quantile_column
from services.forecaster.selection import (
    COMPLEXITY,
    fallback_model,
    plan_backtest,
    select_models,
)

QUANTILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]


def test_plan_uses_non_overlapping_windows_when_history_allows():
    plan = plan_backtest(60, horizon=12, origins=3, min_train=13)
    assert plan.cutoffs == (12, 24, 36)


def test_plan_moves_origins_closer_on_short_histories():
    # 39 months (car parts' training part): 3 disjoint years would leave 3 months to train.
    plan = plan_backtest(39, horizon=12, origins=3, min_train=13)
    assert plan.cutoffs == (12, 19, 26)
    assert 39 - max(plan.cutoffs) >= 13


def test_plan_without_enough_history_or_origins_is_empty():
    assert plan_backtest(20, horizon=12, origins=3, min_train=13).cutoffs == ()
    assert plan_backtest(60, horizon=12, origins=0, min_train=13).cutoffs == ()
    assert plan_backtest(26, horizon=12, origins=3, min_train=13).cutoffs == (12, 13)


def test_takes_part_follows_each_series_length():
    plan = plan_backtest(39, horizon=12, origins=3, min_train=13)
    mask = plan.takes_part(np.array([39, 30, 20]))
    assert mask.tolist() == [[True, True, True], [True, False, False], [False, False, False]]


def test_select_picks_the_lowest_loss_and_breaks_ties_toward_the_simpler_model():
    names = ["AutoETS", "Pooled", "Zero"]
    losses = np.array(
        [
            [1.0, 2.0, 3.0],  # AutoETS lowest
            [2.0, 2.0, 2.0],  # three-way tie → Zero (simplest)
            [np.nan, 5.0, 4.0],  # AutoETS missing → Zero
            [np.nan, np.nan, np.nan],  # no backtest → -1
        ]
    )
    chosen = select_models(losses, np.ones(4), ["a", "b", "c", "d"], names, prior_weight=0.0)
    assert chosen.tolist() == [0, 2, 2, -1]


def test_class_prior_overrides_a_lucky_single_series():
    names = ["Pooled", "TSB"]
    # Nine series where Pooled is clearly better, one where TSB won by a hair.
    losses = np.array([[1.0, 2.0]] * 9 + [[1.01, 1.0]])
    demand = np.ones(10)
    classes = ["intermittent"] * 10
    per_series = select_models(losses, demand, classes, names, prior_weight=0.0)
    shrunk = select_models(losses, demand, classes, names, prior_weight=1.0)
    assert per_series.tolist()[-1] == 1
    assert shrunk.tolist() == [0] * 10


def test_fallback_prefers_pooled_then_empirical_then_the_simplest():
    assert fallback_model(["AutoETS", "Pooled", "Zero"]) == "Pooled"
    assert fallback_model(["AutoETS", "EmpiricalQuantile"]) == "EmpiricalQuantile"
    assert fallback_model(["AutoTheta", "AutoETS"]) == "AutoETS"
    assert COMPLEXITY.index("Zero") == 0


def test_constant_series_selects_the_model_with_the_lowest_backtest_wql():
    # Demand of exactly 3 every month: the empirical quantiles are exactly 3 (loss 0); every
    # model with a spread (NB around a mean, pooled ratios) or a zero loses.
    history = pd.DataFrame(
        {
            "series_id": "const",
            "period": pd.date_range("2020-01-01", periods=40, freq="MS"),
            "y": 3.0,
        }
    )
    candidates = ["Zero", "HistoricAverage", "CrostonSBA", "Pooled", "EmpiricalQuantile"]
    result = forecast_panel(
        history,
        horizon=6,
        freq="MS",
        season_length=12,
        quantiles=QUANTILES,
        candidates=candidates,
    )
    accuracy = result.accuracy.set_index("model")
    assert accuracy.loc["EmpiricalQuantile", "wql"] == 0.0
    assert accuracy["wql"].idxmin() == "EmpiricalQuantile"
    assert accuracy.loc["EmpiricalQuantile", "selected"]
    assert accuracy["selected"].sum() == 1
    forecasts = result.forecasts
    assert set(forecasts["model"]) == {"EmpiricalQuantile"}
    assert (forecasts[[quantile_column(q) for q in QUANTILES]].to_numpy() == 3.0).all()


def test_selection_is_on_quantile_loss_not_mase():
    # An intermittent part: the zero forecast has a fine MASE (its median is 0 like everyone's)
    # but loses on quantile loss, so it must not be picked.
    rng = np.random.default_rng(4)
    y = (rng.random(48) < 0.5) * rng.integers(1, 4, 48)
    history = pd.DataFrame(
        {
            "series_id": "part",
            "period": pd.date_range("2020-01-01", periods=48, freq="MS"),
            "y": y.astype(float),
        }
    )
    result = forecast_panel(
        history,
        horizon=6,
        freq="MS",
        season_length=12,
        quantiles=QUANTILES,
        candidates=["Zero", "EmpiricalQuantile"],
    )
    accuracy = result.accuracy.set_index("model")
    # WQL averages q 0.1..0.9 (README): the zero forecast scores exactly 2·mean(q) = 1 there,
    # whatever other levels (0.95) are forecast.
    assert accuracy.loc["Zero", "wql"] == pytest.approx(1.0)
    assert accuracy.loc["EmpiricalQuantile", "wql"] < accuracy.loc["Zero", "wql"]
    assert accuracy.loc["EmpiricalQuantile", "selected"]
