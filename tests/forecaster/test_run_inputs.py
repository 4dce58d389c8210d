"""What a run reads: one gold build, whole buckets, the series that carry information; and
what it tells operators (manifest figures, Prometheus metrics)."""

from __future__ import annotations

import json
import socket
import urllib.request
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from services.forecaster.history import bucket_history, whole_bucket_origin
from services.forecaster.runner import ForecastOptions, prepare_run, run_forecast
from services.forecaster.telemetry import RunTelemetry
from shared.manifests import GOLD_BUILDS, live_gold_versions, read_live
from shared.settings import NovaSettings
from shared.storage import Lake

pytestmark = pytest.mark.slow
FAST = ("Zero", "EmpiricalQuantile", "Pooled", "CrostonSBA")


def _options(**changes) -> ForecastOptions:
    values = {"horizon": 6, "jobs": 1, "backtest_origins": 2, "candidates": FAST, **changes}
    return ForecastOptions(**values)


def _publish_build(lake: Lake, build_id: str, tables: dict[str, pa.Table]) -> dict[str, int]:
    """Overwrite gold tables and append their build row, as a transformer build does."""
    _, versions = live_gold_versions(lake)
    metadata = {"build_id": build_id}
    for name, table in tables.items():
        versions[name] = lake.write_delta(
            "gold", name, table, mode="overwrite", metadata=metadata
        ).version
    row = pa.table(
        {
            "build_id": [build_id],
            "finished_at": pa.array([datetime.now(UTC)], pa.timestamp("us", tz="UTC")),
            "table_versions": [json.dumps(versions)],
        }
    )
    lake.write_delta("gold", GOLD_BUILDS, row, mode="append", metadata=metadata)
    return versions


def _gold(lake: Lake, name: str) -> pa.Table:
    _, versions = live_gold_versions(lake)
    return lake.delta_table("gold", name, version=versions[name]).to_pyarrow_table()


@pytest.mark.parametrize(
    ("last_day", "bucket", "origin", "partial"),
    [
        (date(2025, 10, 31), "month", date(2025, 10, 1), None),
        (date(2025, 10, 14), "month", date(2025, 9, 1), date(2025, 10, 1)),
        # 2025-05-30 is the last working day of May (a Friday): the month is whole.
        (date(2025, 5, 30), "month", date(2025, 5, 1), None),
        (date(2025, 5, 29), "month", date(2025, 4, 1), date(2025, 5, 1)),
        (date(2026, 12, 4), "week", date(2026, 11, 30), None),  # Friday: the week is whole
        (date(2026, 12, 3), "week", date(2026, 11, 23), date(2026, 11, 30)),
        (date(2026, 1, 1), "week", date(2025, 12, 22), date(2025, 12, 29)),  # across a year
    ],
)
def test_the_last_bucket_is_left_out_when_the_data_ends_before_its_last_working_day(
    last_day, bucket, origin, partial
):
    assert whole_bucket_origin(last_day, bucket) == (origin, partial)


def test_a_partial_last_month_is_left_out_of_fitting_and_forecast_whole(demo_var, tmp_path):
    lake = Lake.from_settings(NovaSettings(var_dir=demo_var).storage)
    demand = _gold(lake, "fact_demand")
    last = pc.max(demand["demand_date"]).as_py()
    prepared = prepare_run(lake, _options(bucket="month"))
    origin, partial = whole_bucket_origin(last, "month")
    assert prepared.origin.date() == origin
    assert (prepared.dropped_partial and prepared.dropped_partial.date()) == partial
    assert prepared.history["period"].max().date() == origin
    kept = demand.filter(pc.less(demand["demand_date"], pa.scalar(partial or date.max)))
    assert prepared.item_history["y"].sum() == pytest.approx(pc.sum(kept["quantity"]).as_py())


def test_an_item_with_a_single_site_gets_no_site_series(demo_var):
    lake = Lake.from_settings(NovaSettings(var_dir=demo_var).storage)
    demand = _gold(lake, "fact_demand")
    frame = demand.to_pandas()
    sites = frame.groupby("item_code")["site_code"].nunique()
    single = sites[sites == 1].index[0]
    several = sites[sites > 1].index[0]
    # The single-site item is made busy enough to qualify on its own.
    by_site = bucket_history(demand, bucket="week", by_site=True, min_nonzero_periods=1)
    assert not by_site["item_code"].eq(single).any()
    assert by_site["item_code"].eq(several).any()
    assert (by_site.groupby("item_code")["site_code"].nunique() > 1).all()


def test_every_item_with_demand_gets_a_forecast_and_a_policy_even_with_one_month(demo_var):
    lake = Lake.from_settings(NovaSettings(var_dir=demo_var).storage)
    demand = _gold(lake, "fact_demand")
    first = pc.min(demand["demand_date"]).as_py()
    once = pa.table(
        {
            "demand_date": pa.array([first], demand.schema.field("demand_date").type),
            "item_code": pa.array(["ONCE-1"], demand.schema.field("item_code").type),
            "site_code": pa.array(
                [demand["site_code"][0].as_py()], demand.schema.field("site_code").type
            ),
            "quantity": pa.array([3.0], demand.schema.field("quantity").type),
        }
    )
    _publish_build(lake, "one-month-item", {"fact_demand": _with_all_columns(demand, once)})
    manifest = run_forecast(lake, _options(bucket="month"))
    forecasts = read_live(lake, "fact_forecast").to_pandas()
    policy = read_live(lake, "inventory_policy").to_pandas()
    items = set(pc.unique(_gold(lake, "fact_demand")["item_code"]).to_pylist())
    assert "ONCE-1" in set(forecasts["item_code"])
    assert set(policy["item_code"]) == set(forecasts["item_code"]) == items
    assert manifest.items_with_policy == len(items)
    row = policy[policy["item_code"] == "ONCE-1"].iloc[0]
    assert row["reorder_point"] > 0  # demand in its history and a lead time: never 0


def _with_all_columns(demand: pa.Table, rows: pa.Table) -> pa.Table:
    """`rows` padded with nulls to every column of gold.fact_demand, appended to it."""
    columns = {}
    for field in demand.schema:
        if field.name in rows.column_names:
            columns[field.name] = rows[field.name].cast(field.type)
        else:
            columns[field.name] = pa.nulls(rows.num_rows, field.type)
    return pa.concat_tables([demand, pa.table(columns, schema=demand.schema)])


def test_a_build_committed_during_a_run_does_not_leak_into_it(demo_var):
    """The run reads every table at the versions of the build it started on; a build that
    commits while the models run (demand x100, lead times 999 days, stock 12345) changes
    nothing in its forecasts, policy or manifest."""
    lake = Lake.from_settings(NovaSettings(var_dir=demo_var).storage)
    started_on, versions = live_gold_versions(lake)
    reference = run_forecast(lake, _options())
    expected_forecasts = read_live(lake, "fact_forecast").drop(["run_id"]).to_pylist()
    expected_policy = read_live(lake, "inventory_policy").drop(["run_id"]).to_pylist()

    demand = _gold(lake, "fact_demand")
    lead = _gold(lake, "fact_lead_time")
    stock = _gold(lake, "fact_stock")
    changed = {
        "fact_demand": demand.set_column(
            demand.schema.get_field_index("quantity"),
            "quantity",
            pc.multiply(demand["quantity"], 100.0),
        ),
        "fact_lead_time": lead.set_column(
            lead.schema.get_field_index("lead_time_days"),
            "lead_time_days",
            pa.array([999.0] * lead.num_rows, lead.schema.field("lead_time_days").type),
        ),
        "fact_stock": stock.set_column(
            stock.schema.get_field_index("quantity_on_hand"),
            "quantity_on_hand",
            pa.array([12345.0] * stock.num_rows, stock.schema.field("quantity_on_hand").type),
        ),
    }
    committed: list[dict[str, int]] = []

    def commit_a_build_mid_run(done: int, total: int) -> None:
        if not committed:
            committed.append(_publish_build(lake, "mid-run", changed))

    manifest = run_forecast(lake, _options(), progress=commit_a_build_mid_run)
    assert committed, "the build was committed while the run was forecasting"
    assert live_gold_versions(lake)[0] == "mid-run"
    assert manifest.gold_build_id == started_on == reference.gold_build_id
    assert manifest.data_versions == reference.data_versions
    assert manifest.data_versions["gold.fact_demand"] == versions["fact_demand"]
    assert read_live(lake, "fact_forecast").drop(["run_id"]).to_pylist() == expected_forecasts
    assert read_live(lake, "inventory_policy").drop(["run_id"]).to_pylist() == expected_policy
    runs = lake.delta_table("gold", "forecast_runs").to_pyarrow_table().to_pylist()
    row = next(r for r in runs if r["run_id"] == manifest.run_id)
    assert row["gold_build_id"] == started_on
    assert json.loads(row["data_versions"]) == reference.data_versions

    # The next run reads the new build.
    after = run_forecast(lake, _options())
    assert after.gold_build_id == "mid-run"
    assert read_live(lake, "inventory_policy").column("lead_time_mean_days").to_pylist()[0] == 999.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_run_tells_operators_its_progress_on_prometheus_and_its_figures_in_the_manifest(
    demo_var,
):
    """One run (each costs tens of seconds here) checked from both ends: its metrics while it
    runs and after, and the stages, classes, failures and build its manifest row records."""
    lake = Lake.from_settings(NovaSettings(var_dir=demo_var).storage)
    port = _free_port()
    telemetry = RunTelemetry()
    telemetry.serve(port, "127.0.0.1")
    scraped: list[str] = []

    def scrape(done: int, total: int) -> None:
        if not scraped:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
                scraped.append(answer.read().decode())

    manifest = run_forecast(lake, _options(), progress=scrape, telemetry=telemetry)
    during = scraped[0]
    assert 'nova_forecast_stage{stage="backtest"} 1.0' in during
    assert f"nova_forecast_series_total {float(manifest.series)}" in during
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        after = answer.read().decode()
    assert 'nova_forecast_stage{stage="done"} 1.0' in after
    assert f"nova_forecast_series_done {float(manifest.series)}" in after
    assert "nova_forecast_runs_total 1.0" in after

    runs = lake.delta_table("gold", "forecast_runs").to_pyarrow_table().to_pylist()
    row = next(r for r in runs if r["run_id"] == manifest.run_id)
    stages = json.loads(row["stage_seconds"])
    assert list(stages) == ["read", "backtest", "select", "final_fit", "policy", "commit"]
    assert all(seconds >= 0 for seconds in stages.values())
    classes = json.loads(row["series_by_class"])
    assert sum(classes.values()) == manifest.series
    assert set(classes) <= {"smooth", "erratic", "intermittent", "lumpy", "no_demand"}
    assert json.loads(row["failures_by_model"]) == manifest.failures_by_model
    assert sum(json.loads(row["selected_models"]).values()) == manifest.series
    assert row["gold_build_id"] == live_gold_versions(lake)[0]
