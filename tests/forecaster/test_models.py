"""forecast_panel and the candidates on small hand-made panels."""

import math

import numpy as np
import pandas as pd
import pytest

from services.forecaster.models import (
    ACCURACY_COLUMNS,
    ALL_MODELS,
    PANEL_MODELS,
    calibration_columns,
    classify,
    forecast_candidate,
    forecast_panel,
    quantile_column,
)
from services.forecaster.models import metrics as forecast_metrics

QUANTILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
Q_COLUMNS = [quantile_column(q) for q in QUANTILES]
FAST = ["Zero", "EmpiricalQuantile", "Pooled", "PooledBlend", "CrostonSBA", "TSB", "ADIDA"]


def panel(series: dict[str, list[float]], start: str = "2021-01-01", freq: str = "MS"):
    frames = [
        pd.DataFrame(
            {
                "series_id": name,
                "period": pd.date_range(start, periods=len(values), freq=freq),
                "y": np.asarray(values, dtype=float),
            }
        )
        for name, values in series.items()
    ]
    return pd.concat(frames, ignore_index=True)


def intermittent(count: int, length: int, seed: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(count):
        rate = rng.uniform(0.05, 2.0)
        occurs = rng.random(length) < rng.uniform(0.15, 0.9)
        out[f"s{i:02d}"] = (rng.poisson(rate, length) * occurs * rng.integers(1, 4)).tolist()
    return out


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([2, 2, 3, 2, 2, 3], "smooth"),  # ADI 1, CV² 0.04
        ([1, 9, 1, 9, 1, 9], "erratic"),  # ADI 1, sizes 1/9: CV² 0.64
        ([0, 0, 3, 0, 0, 3, 0, 0, 3], "intermittent"),  # ADI 3, CV² 0
        ([0, 0, 1, 0, 0, 9, 0, 0, 1], "lumpy"),  # ADI 3, sizes 1/9/1: CV² 1.06
        ([0, 0, 0, 0], "no_demand"),
    ],
)
def test_classify_hand_made_series(values, expected):
    assert classify(values)[2] == expected


def test_classify_returns_adi_and_cv2_and_uses_the_published_cut_offs():
    adi, cv2, demand_class = classify([0, 0, 1, 0, 0, 9, 0, 0, 1])
    assert adi == pytest.approx(3.0)
    assert cv2 == pytest.approx((np.std([1, 9, 1]) / np.mean([1, 9, 1])) ** 2)
    assert demand_class == "lumpy"
    # ADI exactly 1.32 (33 periods, 25 with demand) is not smooth any more.
    assert classify([1.0] * 25 + [0.0] * 8)[:1] == (1.32,)
    assert classify([1.0] * 25 + [0.0] * 8)[2] == "intermittent"
    adi, cv2, demand_class = classify([0.0, 0.0])
    assert math.isinf(adi) and math.isnan(cv2) and demand_class == "no_demand"


@pytest.mark.parametrize("model", ALL_MODELS)
def test_every_candidate_gives_monotone_non_negative_quantiles(model):
    history = panel(intermittent(8, 30, seed=7))
    frame = forecast_candidate(
        history,
        model=model,
        horizon=4,
        freq="MS",
        season_length=12,
        quantiles=QUANTILES,
        everywhere=True,  # Prophet on intermittent series too: its quantiles must hold up
    )
    assert len(frame) == 8 * 4
    values = frame[[*Q_COLUMNS, "mean"]].to_numpy()
    assert np.isfinite(values).all()
    assert (values >= 0).all()
    assert (np.diff(frame[Q_COLUMNS].to_numpy(), axis=1) >= 0).all()


def smooth(count: int, length: int, seed: int) -> dict[str, list[float]]:
    """Parts requested every period (ADI 1, CV² well under 0.49)."""
    rng = np.random.default_rng(seed)
    return {
        f"m{i:02d}": (5 + rng.poisson(3.0, length)).astype(float).tolist() for i in range(count)
    }


def test_forecast_panel_shape_and_columns():
    series = intermittent(4, 30, seed=3)
    series.update(smooth(2, 30, seed=4))
    history = panel(series)
    result = forecast_panel(
        history, horizon=5, freq="MS", season_length=12, quantiles=QUANTILES, candidates=FAST
    )
    forecasts = result.forecasts
    assert list(forecasts.columns) == ["series_id", "period", "step", "model", *Q_COLUMNS, "mean"]
    assert len(forecasts) == 6 * 5
    assert (
        forecasts.groupby("series_id")["step"].apply(list).map(lambda s: s == [1, 2, 3, 4, 5]).all()
    )
    # Periods: the five month starts after the last history month (2023-06).
    expected = list(pd.date_range("2023-07-01", periods=5, freq="MS"))
    assert list(forecasts.loc[forecasts["series_id"] == "s00", "period"]) == expected
    assert forecasts.groupby("series_id")["model"].nunique().eq(1).all()
    assert set(forecasts["model"]) <= set(FAST)
    values = forecasts[Q_COLUMNS].to_numpy()
    assert (values >= 0).all() and (np.diff(values, axis=1) >= 0).all()
    assert (forecasts["mean"] >= 0).all()

    accuracy = result.accuracy
    counts = [c for q in QUANTILES for c in calibration_columns(q)]
    assert list(accuracy.columns) == [*ACCURACY_COLUMNS, *counts]
    # Panel models on every series, the local ones (CrostonSBA, TSB, ADIDA) on smooth and
    # erratic series only.
    classes = accuracy.drop_duplicates("series_id").set_index("series_id")["demand_class"]
    frequent = classes.isin(["smooth", "erratic"])
    assert frequent.sum() == 2
    panel_models = [m for m in FAST if m in PANEL_MODELS]
    assert len(accuracy) == 6 * len(panel_models) + 2 * (len(FAST) - len(panel_models))
    local_rows = accuracy[~accuracy["model"].isin(PANEL_MODELS)]
    assert set(local_rows["series_id"]) == set(classes[frequent].index)
    assert accuracy.groupby("series_id")["selected"].sum().eq(1).all()
    chosen = accuracy[accuracy["selected"]].set_index("series_id")["model"]
    published = forecasts.drop_duplicates("series_id").set_index("series_id")["model"]
    assert chosen.sort_index().equals(published.sort_index())
    assert accuracy["demand_class"].isin(["smooth", "erratic", "intermittent", "lumpy"]).all()
    scored = accuracy.dropna(subset=["cells"])
    for q in QUANTILES:
        below, at_or_below = calibration_columns(q)
        assert (scored[below] <= scored[at_or_below]).all()
        assert (scored[at_or_below] <= scored["cells"]).all()
    # The zero forecast: y < 0 never happens, y <= 0 exactly on the zero-demand cells.
    zero_rows = scored[scored["model"] == "Zero"]
    assert (zero_rows[calibration_columns(0.5)[0]] == 0).all()
    assert (zero_rows[calibration_columns(0.5)[1]] < zero_rows["cells"]).any()
    zero = accuracy[accuracy["model"] == "Zero"]
    # The zero forecast's bias is −1 wherever there was demand in the backtest windows.
    assert zero["bias"].dropna().eq(-1.0).all()


def test_weekly_buckets_forecast_the_following_mondays():
    history = panel(intermittent(3, 80, seed=5), start="2024-01-01", freq="W-MON")
    result = forecast_panel(
        history, horizon=3, freq="W-MON", season_length=52, quantiles=QUANTILES, candidates=FAST
    )
    periods = result.forecasts.loc[result.forecasts["series_id"] == "s00", "period"]
    last = history["period"].max()
    assert list(periods) == [last + pd.Timedelta(weeks=k) for k in (1, 2, 3)]
    assert all(p.dayofweek == 0 for p in periods)


def test_all_zero_series_forecasts_zero_with_the_zero_model():
    series = intermittent(5, 30, seed=11)
    series["dead"] = [0.0] * 30
    result = forecast_panel(
        panel(series), horizon=4, freq="MS", season_length=12, quantiles=QUANTILES,
        candidates=FAST,
    )  # fmt: skip
    dead = result.forecasts[result.forecasts["series_id"] == "dead"]
    assert (dead[[*Q_COLUMNS, "mean"]].to_numpy() == 0).all()
    assert set(dead["model"]) == {"Zero"}  # every model ties at zero loss: the simplest wins
    rows = result.accuracy[result.accuracy["series_id"] == "dead"]
    assert set(rows["demand_class"]) == {"no_demand"}
    assert rows["wql"].isna().all()  # undefined without demand


def test_series_too_short_for_a_backtest_falls_back_to_pooled():
    series = intermittent(6, 30, seed=13)
    series["new"] = [0.0, 2.0, 0.0, 1.0, 1.0]  # 5 months: no origin keeps 13 months to train
    result = forecast_panel(
        panel(series), horizon=3, freq="MS", season_length=12, quantiles=QUANTILES,
        candidates=[*FAST, "AutoETS"],
    )  # fmt: skip
    new = result.forecasts[result.forecasts["series_id"] == "new"]
    assert set(new["model"]) == {"Pooled"}
    assert len(new) == 3
    assert (new[Q_COLUMNS].to_numpy() >= 0).all()
    rows = result.accuracy[result.accuracy["series_id"] == "new"]
    assert rows[["mase", "wql", "bias", "wape", "cells"]].isna().all().all()
    assert rows.loc[rows["selected"], "model"].tolist() == ["Pooled"]


def test_without_backtest_origins_every_series_gets_the_fallback():
    result = forecast_panel(
        panel(intermittent(3, 30, seed=2)), horizon=2, freq="MS", season_length=12,
        quantiles=QUANTILES, backtest_origins=0, candidates=["EmpiricalQuantile", "TSB"],
    )  # fmt: skip
    assert set(result.forecasts["model"]) == {"EmpiricalQuantile"}


def test_jobs_do_not_change_the_result():
    history = panel(intermittent(10, 30, seed=17))
    kwargs = {
        "horizon": 4,
        "freq": "MS",
        "season_length": 12,
        "quantiles": QUANTILES,
        "candidates": ["Zero", "Pooled", "PooledBlend", "CrostonSBA", "TSB", "AutoETS"],
    }
    one = forecast_panel(history, jobs=1, **kwargs)
    calls: list[tuple[int, int]] = []
    two = forecast_panel(
        history, jobs=2, progress=lambda done, total: calls.append((done, total)), **kwargs
    )
    pd.testing.assert_frame_equal(one.forecasts, two.forecasts)
    pd.testing.assert_frame_equal(one.accuracy, two.accuracy)
    assert calls[-1] == (10, 10)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_gaps_inside_a_span_are_zero_demand():
    full = panel({"a": [1.0, 0.0, 0.0, 2.0] * 6})
    gappy = full[full["y"] > 0]  # the zero months simply missing
    kwargs = {"horizon": 2, "freq": "MS", "season_length": 12, "quantiles": QUANTILES,
              "candidates": ["EmpiricalQuantile", "CrostonSBA"]}  # fmt: skip
    pd.testing.assert_frame_equal(
        forecast_panel(full, **kwargs).forecasts, forecast_panel(gappy, **kwargs).forecasts
    )


def test_fractional_demand_keeps_its_units():
    series = {f"m{i}": ([0.0, 2.5, 0.0, 5.0, 0.0, 0.0] * 5) for i in range(4)}
    frame = forecast_candidate(
        panel(series), model="Pooled", horizon=2, freq="MS", season_length=12,
        quantiles=QUANTILES,
    )  # fmt: skip
    values = frame[Q_COLUMNS].to_numpy()
    assert np.allclose(values / 2.5, np.round(values / 2.5))  # multiples of the 2.5 m unit
    assert values.max() > 0


def test_invalid_input_is_rejected():
    good = panel({"a": [1.0, 0.0, 2.0]})
    kwargs = {"horizon": 2, "freq": "MS", "season_length": 12, "quantiles": QUANTILES}
    with pytest.raises(ValueError, match="y must be"):
        forecast_panel(good.assign(y=-1.0), **kwargs)
    with pytest.raises(ValueError, match="unknown"):
        forecast_panel(good, candidates=["NotAModel"], **kwargs)
    with pytest.raises(ValueError, match="quantiles"):
        forecast_panel(good, **{**kwargs, "quantiles": [0.5, 1.0]})
    with pytest.raises(ValueError, match="duplicate"):
        forecast_panel(pd.concat([good, good]), **kwargs)


def test_empty_history_gives_empty_frames():
    empty = pd.DataFrame({"series_id": [], "period": pd.to_datetime([]), "y": []})
    result = forecast_panel(empty, horizon=2, freq="MS", season_length=12, quantiles=QUANTILES)
    assert result.forecasts.empty and result.accuracy.empty
    assert list(result.forecasts.columns) == [
        "series_id",
        "period",
        "step",
        "model",
        *Q_COLUMNS,
        "mean",
    ]


def test_wql_is_over_q01_to_q09_and_the_counts_match_the_backtest_cells():
    """WQL has one definition (README): mean over q 0.1..0.9; the 0.95 quantile is scored for
    calibration but not in WQL. Checked on the Zero model, whose numbers are known: its
    quantile loss over 0.1..0.9 is Σ 2·mean(q)·y = Σy, so WQL is exactly 1 (1.09 if 0.95 were
    averaged in)."""
    result = forecast_panel(
        panel(intermittent(8, 40, seed=21)), horizon=4, freq="MS", season_length=12,
        quantiles=QUANTILES, candidates=["Zero", "EmpiricalQuantile"],
    )  # fmt: skip
    zero = result.accuracy[(result.accuracy["model"] == "Zero") & result.accuracy["cells"].gt(0)]
    with_demand = zero[zero["actual_total"] > 0]
    assert len(with_demand) > 0
    assert np.allclose(with_demand["wql"], 1.0)
    assert np.allclose(with_demand["quantile_loss"], with_demand["actual_total"])
    assert forecast_metrics.weighted_quantile_loss([1.0, 0.0], [[0.0] * 9] * 2, QUANTILES[:9]) == 1
    # 3 origins x 4 steps per series with a full backtest
    assert set(zero["cells"]) == {12.0}


def test_run_stats_report_stages_classes_and_failures():
    series = intermittent(6, 30, seed=3)
    series["flat"] = [1.0] * 30  # SeasonalNaive and the others fit; ETS on a constant is fine
    result = forecast_panel(
        panel(series), horizon=3, freq="MS", season_length=12, quantiles=QUANTILES,
        candidates=["Zero", "EmpiricalQuantile", "TSB"],
    )  # fmt: skip
    stats = result.stats
    assert set(stats["stage_seconds"]) == {"backtest", "select", "final_fit"}
    assert all(v >= 0 for v in stats["stage_seconds"].values())
    assert sum(stats["series_by_class"].values()) == 7
    assert stats["series_by_class"]["smooth"] >= 1
    assert stats["failures_by_model"] == {}


def test_local_models_run_where_they_pay_smooth_and_erratic_series_with_enough_history():
    series = intermittent(3, 40, seed=8)
    series.update(smooth(2, 40, seed=9))
    series["short"] = (5 + np.random.default_rng(1).poisson(3.0, 20)).astype(float).tolist()
    result = forecast_panel(
        panel(series), horizon=3, freq="MS", season_length=12, quantiles=QUANTILES,
        candidates=["Zero", "Pooled", "TSB", "AutoETS"],
    )  # fmt: skip
    ran = result.accuracy.groupby("series_id")["model"].apply(set).to_dict()
    for name in ("s00", "s01", "s02"):  # intermittent: panel models only
        assert ran[name] == {"Zero", "Pooled"}
    for name in ("m00", "m01"):  # smooth with 40 months: every candidate
        assert ran[name] == {"Zero", "Pooled", "TSB", "AutoETS"}
    assert ran["short"] == {"Zero", "Pooled", "TSB"}  # smooth, but under two seasons: no ETS
