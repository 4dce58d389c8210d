"""The endpoints' computations on small hand-made tables."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from services.api import queries


def demand(rows):
    return pa.table(
        {
            "demand_date": pa.array([r[0] for r in rows], pa.date32()),
            "item_code": pa.array(["A"] * len(rows), pa.string()),
            "site_code": pa.array([r[1] for r in rows], pa.string()),
            "quantity": pa.array([r[2] for r in rows], pa.float64()),
            "request_lines": pa.array([1] * len(rows), pa.int32()),
            "requests": pa.array([1] * len(rows), pa.int32()),
        }
    )


DEMAND = demand(
    [
        (date(2025, 1, 6), "S1", 2.0),  # Monday, week of 6 Jan
        (date(2025, 1, 8), "S2", 3.0),
        (date(2025, 1, 20), "S1", 5.0),  # two weeks later
        (date(2025, 3, 3), "S1", 1.0),
    ]
)


def test_weeks_start_on_monday_and_gaps_are_zero():
    table = queries.demand_history(
        DEMAND, site=None, date_from=None, date_to=None, grain="week", max_days=1000
    )
    rows = table.to_pylist()
    assert rows[0] == {"period": date(2025, 1, 6), "quantity": 5.0, "request_lines": 2,
                       "requests": 2}  # fmt: skip
    assert rows[1]["period"] == date(2025, 1, 13) and rows[1]["quantity"] == 0.0
    assert rows[2]["quantity"] == 5.0
    assert rows[-1]["period"] == date(2025, 3, 3)
    assert len(rows) == 9


def test_month_grain_site_filter_and_range():
    table = queries.demand_history(
        DEMAND, site="S1", date_from=date(2024, 12, 15), date_to=date(2025, 4, 2),
        grain="month", max_days=1000,
    )  # fmt: skip
    assert table.to_pydict()["period"] == [date(2024, 12, 1), date(2025, 1, 1), date(2025, 2, 1),
                                          date(2025, 3, 1), date(2025, 4, 1)]  # fmt: skip
    assert table.to_pydict()["quantity"] == [0.0, 7.0, 0.0, 1.0, 0.0]


def test_open_range_is_capped_at_the_newest_days():
    table = queries.demand_history(
        DEMAND, site=None, date_from=None, date_to=None, grain="day", max_days=10
    )
    assert table["period"][0].as_py() == date(2025, 2, 21)
    assert table.num_rows == 11


def test_range_checks():
    queries.check_range(date(2025, 1, 1), date(2025, 1, 1), 0)
    with pytest.raises(queries.BadQuery, match="after"):
        queries.check_range(date(2025, 1, 2), date(2025, 1, 1), 10)
    with pytest.raises(queries.BadQuery, match="more than 10 days"):
        queries.check_range(date(2025, 1, 1), date(2025, 1, 12), 10)


def forecast(site, periods):
    n = len(periods)
    return pa.table(
        {
            "series_id": pa.array(["A" if site is None else f"A|{site}"] * n, pa.string()),
            "item_code": pa.array(["A"] * n, pa.string()),
            "site_code": pa.array([site] * n, pa.string()),
            "period": pa.array(periods, pa.date32()),
            "step": pa.array(range(1, n + 1), pa.int32()),
            "model": pa.array(["TSB"] * n, pa.string()),
            **{q: pa.array([float(i) for i in range(n)]) for q in queries.QUANTILE_COLUMNS},
            "p_service": pa.array([9.0] * n),
            "mean": pa.array([1.0] * n),
        }
    )


def test_history_runs_up_to_the_forecast_start_even_after_a_series_last_demand():
    # S2 last asked on 8 Jan; the forecast starts on 3 Feb: history must still reach 27 Jan.
    rows = forecast("S2", [date(2025, 2, 3), date(2025, 2, 10)])
    assert queries.forecast_series(
        rows, DEMAND, site=None, horizon=None, bucket="week", history_periods=3,
        data_end=date(2025, 2, 2),
    ) == [], "no site: the item-level series only"  # fmt: skip
    [series] = queries.forecast_series(
        rows, DEMAND, site="S2", horizon=None, bucket="week", history_periods=3,
        data_end=date(2025, 2, 2),
    )  # fmt: skip
    assert [h["period"] for h in series["history"]] == [date(2025, 1, 13), date(2025, 1, 20),
                                                        date(2025, 1, 27)]  # fmt: skip
    assert [h["quantity"] for h in series["history"]] == [0.0, 0.0, 0.0]
    assert [p["actual"] for p in series["points"]] == [None, None]


def test_actuals_fill_only_whole_observed_periods():
    rows = forecast(None, [date(2025, 2, 24), date(2025, 3, 3), date(2025, 3, 10)])
    [series] = queries.forecast_series(
        rows, DEMAND, site=None, horizon=None, bucket="week", history_periods=2,
        data_end=date(2025, 3, 9),  # the week of 3 Mar ends on the 9th: observed whole
    )  # fmt: skip
    assert [p["actual"] for p in series["points"]] == [0.0, 1.0, None]
    [short] = queries.forecast_series(
        rows, DEMAND, site=None, horizon=1, bucket="week", history_periods=2,
        data_end=date(2025, 3, 9),
    )  # fmt: skip
    assert [p["step"] for p in short["points"]] == [1]


def test_alerts_order_by_level_then_cover():
    policy = pa.table(
        {
            "item_code": ["A", "B", "C", "D"],
            "alert_level": ["attention", "critical", "ok", "critical"],
            "on_hand": [1.0, 0.0, 9.0, 2.0],
            "reorder_point": [2.0] * 4,
            "safety_stock": [1.0] * 4,
            "days_of_cover": [3.0, 0.0, 50.0, 1.5],
            "lead_time_mean_days": [10.0] * 4,
            "snapshot_date": pa.array([date(2025, 1, 1)] * 4, pa.date32()),
        }
    )
    items = pa.table({"item_code": ["D", "A"], "item_description": ["DEE", "AYE"]})
    table = queries.alerts(policy, items, ["critical", "attention"])
    assert table["item_code"].to_pylist() == ["B", "D", "A"]
    assert table["item_description"].to_pylist() == [None, "DEE", "AYE"]


def test_alerts_without_any_alert_are_an_empty_answer():
    """A run without stock snapshots has no alert level on any item (issue 13, item 8: the
    empty selection built an untyped position column and the join raised, a 500)."""
    policy = pa.table(
        {
            "item_code": ["A", "B"],
            "alert_level": pa.array([None, None], pa.string()),
            "on_hand": pa.array([None, None], pa.float64()),
            "reorder_point": [2.0, 3.0],
            "safety_stock": [1.0, 1.0],
            "days_of_cover": pa.array([None, None], pa.float64()),
            "lead_time_mean_days": [10.0, 10.0],
            "snapshot_date": pa.array([None, None], pa.date32()),
        }
    )
    items = pa.table({"item_code": ["A", "B"], "item_description": ["AYE", "BEE"]})
    table = queries.alerts(policy, items, ["critical", "attention"])
    assert table.num_rows == 0
    assert table.schema.field("item_description").type == pa.string()


def test_accuracy_ignores_nan_and_unselected_models():
    """A run written before issue 12 (no pooled sums, no counts): means over series where
    they are defined, WQL and calibration n/a."""
    rows = pa.table(
        {
            "series_id": ["A", "A", "B", "C"],
            "item_code": ["A", "A", "B", "C"],
            "model": ["TSB", "Zero", "TSB", "TSB"],
            "demand_class": ["lumpy", "lumpy", "lumpy", "smooth"],
            "selected": [True, False, True, True],
            **{m: [1.0, 100.0, float("nan"), 3.0] for m in ("mase", "wql", "wape", "bias")},
            "coverage_80": [0.8, 0.1, 0.9, 0.7],
        }
    )
    groups = {g["group"]: g for g in queries.accuracy(rows, None, "demand_class", 0.95).to_pylist()}
    assert groups["lumpy"]["series"] == 2 and groups["lumpy"]["mase"] == 1.0
    assert groups["smooth"]["mase"] == 3.0
    assert groups["lumpy"]["wql"] is None  # the old per-series WQL averaged 0.1..0.95
    assert groups["lumpy"]["share_below_p10"] is None and groups["lumpy"]["calibrated_p90"] is None
