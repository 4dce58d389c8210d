"""Forecast runs over a real local lake built from demo data, and their event on real NATS."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pandas as pd
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from services.forecaster.history import bucket_history
from services.forecaster.main import run_once
from services.forecaster.runner import (
    ForecastOptions,
    NoHistoryError,
    run_forecast,
)
from shared.broker import connect, ensure_stream
from shared.events import ForecastPublished
from shared.manifests import live_forecast_versions as live_versions
from shared.manifests import read_live
from shared.settings import NovaSettings
from shared.storage import Lake

pytestmark = pytest.mark.slow


def _options(**changes) -> ForecastOptions:
    return ForecastOptions(**{"horizon": 8, "jobs": 1, "backtest_origins": 2, **changes})


def test_a_run_commits_forecasts_accuracy_policy_and_a_manifest(demo_var):
    lake = Lake.from_settings(NovaSettings(var_dir=demo_var).storage)
    progress: list[tuple[int, int]] = []
    manifest = run_forecast(lake, _options(), progress=lambda d, t: progress.append((d, t)))

    forecasts = read_live(lake, "fact_forecast")
    accuracy = read_live(lake, "forecast_accuracy")
    policy = read_live(lake, "inventory_policy")
    assert forecasts is not None and accuracy is not None and policy is not None
    assert live_versions(lake) == manifest.table_versions
    # One series per item with enough history, horizon rows each, quantiles sane.
    frame = forecasts.to_pandas()
    assert frame.groupby("series_id")["step"].count().eq(8).all()
    assert frame["series_id"].nunique() == manifest.series
    quantile_columns = [f"p{q}" for q in (10, 20, 30, 40, 50, 60, 70, 80, 90)] + ["p_service"]
    values = frame[quantile_columns].to_numpy()
    assert (values >= 0).all()
    assert (values[:, 1:] >= values[:, :-1] - 1e-9).all(), "quantiles are monotone"
    assert set(frame["run_id"]) == {manifest.run_id}
    # Accuracy: every candidate scored per series, exactly one selected per series.
    acc = accuracy.to_pandas()
    assert acc.groupby("series_id")["selected"].sum().eq(1).all()
    assert acc.groupby("series_id")["model"].nunique().min() >= 3
    # Policy: a reorder point for every forecast item; stock alerts where snapshots exist.
    pol = policy.to_pandas()
    assert set(pol["item_code"]) == set(frame["item_code"])
    assert (pol["reorder_point"] >= 0).all()
    assert pol["alert_level"].notna().any()
    assert set(pol["alert_level"].dropna()) <= {"critical", "attention", "monitor", "ok"}
    # The manifest records what was read and what was written.
    runs = lake.delta_table("gold", "forecast_runs").to_pyarrow_table().to_pylist()
    latest = next(r for r in runs if r["run_id"] == manifest.run_id)
    assert json.loads(latest["table_versions"]) == manifest.table_versions
    assert "gold.fact_demand" in json.loads(latest["data_versions"])
    assert json.loads(latest["parameters"])["horizon"] == 8
    assert progress and progress[-1][0] == progress[-1][1] == manifest.series


def test_an_interrupted_run_leaves_the_previous_forecasts_live(demo_var):
    lake = Lake.from_settings(NovaSettings(var_dir=demo_var).storage)
    first = run_forecast(lake, _options())
    before = read_live(lake, "fact_forecast")

    class Interrupted(Exception):
        pass

    def interrupt() -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        run_forecast(lake, _options(service_level=0.9), before_manifest=interrupt)
    # The tables moved on, but readers still see the first run's versions and rows.
    assert (
        lake.delta_table("gold", "fact_forecast").version() > first.table_versions["fact_forecast"]
    )
    assert live_versions(lake) == first.table_versions
    after = read_live(lake, "fact_forecast")
    assert after.to_pylist() == before.to_pylist()
    assert set(after.column("run_id").to_pylist()) == {first.run_id}


def test_items_option_limits_the_series(demo_var):
    lake = Lake.from_settings(NovaSettings(var_dir=demo_var).storage)
    demand = lake.delta_table("gold", "fact_demand").to_pyarrow_table()
    two = sorted(set(demand.column("item_code").to_pylist()))[:2]
    manifest = run_forecast(lake, _options(items=two, min_nonzero_periods=1))
    forecasts = read_live(lake, "fact_forecast")
    assert set(forecasts.column("item_code").to_pylist()) == set(two)
    assert manifest.series == 2


def test_no_demand_history_is_a_clear_error(tmp_path):
    lake = Lake.from_settings(NovaSettings(var_dir=tmp_path).storage)
    with pytest.raises(NoHistoryError):
        run_forecast(lake, _options())


def test_history_is_zero_filled_to_the_last_bucket_of_all_data(demo_var):
    lake = Lake.from_settings(NovaSettings(var_dir=demo_var).storage)
    demand = lake.delta_table("gold", "fact_demand").to_pyarrow_table()
    history = bucket_history(demand, bucket="week")
    last = history["period"].max()
    assert history.groupby("series_id")["period"].max().eq(last).all()
    assert (history["y"] >= 0).all()
    # Every series is regular: consecutive weeks without gaps.
    gaps = history.groupby("series_id")["period"].apply(lambda p: p.diff().dropna().unique())
    assert all(len(g) == 1 and g[0] == pd.Timedelta(weeks=1) for g in gaps if len(g))
    assert history["y"].sum() == pytest.approx(sum(demand.column("quantity").to_pylist()))


def test_run_once_publishes_forecast_published_on_real_nats(demo_var, nats_url):
    settings = NovaSettings(var_dir=demo_var, nats={"url": nats_url})
    manifest = run_once(settings, _options())
    assert manifest is not None

    async def received() -> ForecastPublished:
        nc = await connect(settings.nats, name="test")
        js = nc.jetstream()
        await ensure_stream(js, settings.nats)
        sub = await js.pull_subscribe(
            "nova.v1.forecast.published",
            stream=settings.nats.stream,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        message = (await sub.fetch(1, timeout=5))[0]
        await nc.close()
        return ForecastPublished.model_validate_json(message.data)

    event = asyncio.run(received())
    assert event.run_id == manifest.run_id
    assert {t.table for t in event.tables} == {
        "gold.fact_forecast",
        "gold.forecast_accuracy",
        "gold.inventory_policy",
    }
    assert event.series == manifest.series
    assert event.occurred_at <= datetime.now(UTC)


def test_item_by_site_series_are_added_where_history_allows(demo_var):
    lake = Lake.from_settings(NovaSettings(var_dir=demo_var).storage)
    demand = lake.delta_table("gold", "fact_demand").to_pyarrow_table()
    weekly = bucket_history(demand, bucket="week", by_site=True)
    busy = weekly[weekly["y"] > 0].groupby("series_id").size()
    threshold = int(busy.sort_values().iloc[-3])  # the three busiest item x site pairs qualify
    expected_pairs = set(busy[busy >= threshold].index)
    items_only = run_forecast(lake, _options())
    manifest = run_forecast(lake, _options(site_min_nonzero_periods=threshold))
    forecasts = read_live(lake, "fact_forecast").to_pandas()
    with_site = forecasts[forecasts["site_code"].notna()]
    assert set(with_site["series_id"]) == expected_pairs
    assert manifest.series == items_only.series + len(expected_pairs)
    assert (with_site["series_id"] == with_site["item_code"] + "|" + with_site["site_code"]).all()
    policy = read_live(lake, "inventory_policy").to_pandas()
    assert policy["item_code"].is_unique, "reorder points stay per material"
