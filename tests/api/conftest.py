"""Fixtures of the API tests: gold and a forecast run built from demo data by the real
ingestor, transformer and forecaster."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from services.forecaster.runner import ForecastOptions, run_forecast
from shared.manifests import GOLD_BUILDS
from shared.storage import Lake
from tests.demo_lake import build_demo_gold


def record_build(
    lake: Lake, build_id: str, versions: Mapping[str, int], metadata: Mapping[str, str]
) -> None:
    """The row of gold.builds a transformer build ends with: what the API serves."""
    row = pa.table(
        {
            "build_id": [build_id],
            "finished_at": pa.array([datetime.now(UTC)], pa.timestamp("us", tz="UTC")),
            "table_versions": [json.dumps(dict(versions))],
        }
    )
    lake.write_delta("gold", GOLD_BUILDS, row, mode="append", metadata=dict(metadata))


FAST_MODELS = ("Zero", "EmpiricalQuantile", "CrostonSBA", "SeasonalNaive")


@pytest.fixture(scope="session")
def demo_gold(tmp_path_factory):
    """A var dir with demo gold and one forecast run (item and item x site series)."""
    var = tmp_path_factory.mktemp("api") / "var"
    settings = build_demo_gold(var, seed=11, items=30, depots=8, days=500)
    lake = Lake.from_settings(settings.storage)
    # Every item with demand gets a forecast; one is left out of this run on purpose, so the
    # pages and endpoints of an item without a forecast (a part added after the run) are tested.
    items = sorted(
        set(lake.delta_table("gold", "dim_item").to_pyarrow_table()["item_code"].to_pylist())
    )
    run_forecast(
        lake,
        ForecastOptions(
            horizon=8, jobs=1, backtest_origins=2, site_min_nonzero_periods=8,
            candidates=FAST_MODELS, items=items[:-1],
        ),
    )  # fmt: skip
    return var


@pytest.fixture
def gold_var(demo_gold, tmp_path):
    """A private copy of the demo var dir, for tests that change gold."""
    copy = tmp_path / "var"
    shutil.copytree(demo_gold, copy)
    return copy
