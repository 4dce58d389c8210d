"""`inventory_policy_table`: the pure contract (forecasts, history, lead times, stock → rows),
and the reorder point's floors, units and thin-evidence labels."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from services.forecaster.policy import lead_time_distribution, reorder_point
from services.forecaster.policy_table import POLICY_SCHEMA, inventory_policy_table
from services.forecaster.runner import forecast_column

QUANTILES = (0.1, 0.5, 0.9, 0.95)


def _forecasts(levels: dict[str, float], horizon: int = 3) -> pa.Table:
    rows = []
    for item, level in levels.items():
        for step in range(1, horizon + 1):
            row = {"item_code": item, "site_code": None, "step": step, "mean": level}
            for q in QUANTILES:
                row[forecast_column(q)] = level * (2 * q)
            rows.append(row)
        rows.append({**rows[-1], "site_code": "S1"})  # a site row: not a policy row
    return pa.Table.from_pylist(rows)


def _history(series: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for item, values in series.items():
        periods = pd.date_range(end="2024-12-01", periods=len(values), freq="MS")
        pairs = zip(periods, values, strict=True)
        rows += [{"item_code": item, "period": p, "y": v} for p, v in pairs]
    return pd.DataFrame(rows)


HISTORY = {
    "A": [0, 2, 0, 0, 1, 3, 0, 0, 0, 1, 0, 2, 0, 0, 5, 0, 1, 0, 0, 2],
    "B": [4.0],  # a single month of history
    "C": [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],  # Zero-model territory: one lump
}
LEAD_TIMES = pa.table(
    {"item_code": ["A", "A", "A", "C"], "lead_time_days": [30.0, 45.0, 60.0, 90.0]}
)
STOCK = pa.table(
    {
        "snapshot_date": [date(2024, 12, 1), date(2024, 12, 31), date(2024, 12, 31)],
        "item_code": ["A", "A", "B"],
        "quantity_on_hand": pa.array([9.0, 1.0, None], pa.float64()),
    }
)


def _table(history=None, lead_times=LEAD_TIMES, stock=STOCK, forecasts=None) -> pa.Table:
    return inventory_policy_table(
        forecasts if forecasts is not None else _forecasts({"A": 1.0, "B": 2.0, "C": 0.0}),
        _history(HISTORY) if history is None else history,
        lead_times,
        stock,
        run_id="r1",
        service_level=0.95,
        period_days=30,
        quantiles=QUANTILES,
    )


def test_one_row_per_item_with_the_schema_stock_and_alerts():
    table = _table()
    assert table.schema == POLICY_SCHEMA
    rows = {r["item_code"]: r for r in table.to_pylist()}
    assert sorted(rows) == ["A", "B", "C"]
    a, b, c = rows["A"], rows["B"], rows["C"]
    # Latest snapshot only: A has 1 on hand on 2024-12-31, not 9.
    assert (a["snapshot_date"], a["on_hand"]) == (date(2024, 12, 31), 1.0)
    assert a["alert_level"] in {"critical", "attention"}
    # B's only line is null: no on-hand, no alert (not 0, not critical); C has no stock row.
    assert (b["snapshot_date"], b["on_hand"], b["alert_level"]) == (date(2024, 12, 31), None, None)
    assert (c["on_hand"], c["alert_level"]) == (None, None)
    assert a["lead_time_source"] == "item" and a["lead_time_samples"] == 3
    assert c["lead_time_source"] == "fallback"
    assert a["method"] == "demand_history" and a["lead_time_demand_source"] == "history"


def test_tables_absent_are_handled_with_typed_nulls():
    table = _table(lead_times=None, stock=None)
    assert table.schema == POLICY_SCHEMA
    assert table.column("on_hand").null_count == table.num_rows
    assert table.column("snapshot_date").type == pa.date32()
    assert set(table.column("lead_time_source").to_pylist()) == {"fallback"}


def test_never_zero_for_a_part_with_demand_even_with_a_zero_forecast():
    rows = {r["item_code"]: r for r in _table().to_pylist()}
    # C's forecast is 0 (the Zero model), its history has one lump, its lead time 3 months.
    assert rows["C"]["reorder_point"] >= 1
    assert all(r["reorder_point"] >= 1 for r in rows.values())


def test_single_month_of_history_gets_a_thin_policy():
    b = {r["item_code"]: r for r in _table().to_pylist()}["B"]
    assert b["method"] == "thin_history"
    assert (b["evidence_periods"], b["evidence_demand_periods"]) == (1, 1)
    assert b["reorder_point"] >= 4  # at least its one lump


def test_item_without_history_uses_its_forecast():
    table = _table(forecasts=_forecasts({"A": 1.0, "Z": 3.0}))
    z = {r["item_code"]: r for r in table.to_pylist()}["Z"]
    assert z["method"] == "forecast_only" and z["lead_time_demand_source"] == "forecast"
    assert z["reorder_point"] > 0


def test_same_rows_in_any_order_give_the_same_table():
    first = _table()
    rng = np.random.default_rng(3)
    history = _history(HISTORY)
    forecasts = _forecasts({"A": 1.0, "B": 2.0, "C": 0.0})
    shuffled = _table(
        history=history.iloc[rng.permutation(len(history))],
        lead_times=LEAD_TIMES.take(rng.permutation(LEAD_TIMES.num_rows)),
        stock=STOCK.take(rng.permutation(STOCK.num_rows)),
        forecasts=forecasts.take(rng.permutation(forecasts.num_rows)),
    )
    assert shuffled.equals(first)


def test_count_data_gets_whole_reorder_points():
    rng = np.random.default_rng(5)
    lead = lead_time_distribution([20, 35, 47, 61], fallback_days=30)
    for _ in range(50):
        y = np.where(rng.random(36) < 0.3, rng.geometric(0.4, 36), 0)
        for level in (0.9, 0.95):
            policy = reorder_point(y, lead, level, 30, forecast_mean_per_period=float(y.mean()))
            assert policy.reorder_point == int(policy.reorder_point)
            assert policy.order_up_to == int(policy.order_up_to)
            assert policy.reorder_point >= 1


def test_reorder_point_grows_with_the_level_and_the_lead_time():
    y = [0, 2, 0, 0, 1, 3, 0, 0, 0, 1, 0, 2, 0, 0, 5, 0, 1, 0, 0, 2] * 3
    by_lead = [
        reorder_point(y, lead_time_distribution([], fallback_days=d), 0.95, 30).reorder_point
        for d in (30, 90, 180, 360)
    ]
    assert by_lead == sorted(by_lead) and by_lead[0] < by_lead[-1]
    lead = lead_time_distribution([], fallback_days=60)
    by_level = [reorder_point(y, lead, p, 30).reorder_point for p in (0.5, 0.8, 0.9, 0.99)]
    assert by_level == sorted(by_level) and by_level[0] < by_level[-1]


def test_a_fading_forecast_lowers_the_reorder_point_but_not_to_zero():
    y = [0, 2, 0, 1, 1, 3, 0, 2, 0, 1, 0, 2, 1, 0, 5, 0, 1, 0, 3, 2] * 2
    lead = lead_time_distribution([], fallback_days=90)
    steady = reorder_point(y, lead, 0.95, 30, forecast_mean_per_period=float(np.mean(y)))
    fading = reorder_point(y, lead, 0.95, 30, forecast_mean_per_period=0.0)
    assert steady.level_ratio == 1.0 and fading.level_ratio == pytest.approx(1 / 3)
    assert 1 <= fading.reorder_point < steady.reorder_point


def test_expected_service_level_is_the_promise_of_the_printed_reorder_point():
    rows = {r["item_code"]: r for r in _table().to_pylist()}
    for row in rows.values():
        # never more than the allowed rounding below the target, at most 1
        assert 0.95 - 0.02 - 1e-9 <= row["expected_service_level"] <= 1.0
    # A: the same value the pure function gives for the same inputs
    history = np.array(HISTORY["A"], dtype=float)
    lead = lead_time_distribution([30.0, 45.0, 60.0], fallback_days=7.0)
    policy = reorder_point(history, lead, 0.95, 30, forecast_mean_per_period=1.0)
    assert rows["A"]["reorder_point"] == policy.reorder_point
    assert rows["A"]["expected_service_level"] == pytest.approx(policy.expected_service_level)


def test_expected_service_level_near_one_where_the_floor_binds():
    # One lump of 4 in 24 months, a 10-day lead time: the 0.95-quantile of U + x_L is below the
    # lump, the floor lifts s to 4, and the model's promise there is well above the target.
    history = np.zeros(24)
    history[5] = 4.0
    lead = lead_time_distribution([10.0] * 3, fallback_days=7.0)
    policy = reorder_point(history, lead, 0.95, 30)
    assert policy.floor_binds and policy.reorder_point == 4.0
    assert policy.expected_service_level > 0.97
