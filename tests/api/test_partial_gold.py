"""Every endpoint over empty and partial gold answers without a 5xx (issue 13, item 8).

A real lake is not always whole: no stock snapshot loaded yet, no forecast run yet, no lead
times, one item, no item. Lakes of every such shape are drawn (hypothesis) from the demo gold:
its tables at their pinned versions, with the parts a shape lacks removed as the pipeline
would leave them (an empty table, the policy's columns of that part null, no forecast run),
committed as a build and a forecast run. Each endpoint is then asked, with and without the
codes that exist, in every format.

Item 8 itself (`/inventory/alerts` after a run without stock snapshots: an untyped empty
selection, a 500) is the `no_stock` shape with a forecast, always among the examples.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.api.app import create_app
from shared.manifests import FORECAST_RUNS, live_forecast_versions, live_gold_versions
from shared.settings import ApiSettings, NovaSettings, StorageSettings
from shared.storage import Lake
from tests.api.conftest import record_build

EXPORTED = frozenset(
    f"/api/v1/{p}"
    for p in ("items", "sites", "suppliers", "demand", "forecasts", "forecasts/summary",
              "inventory/policy", "inventory/alerts", "kpis/forecast-accuracy", "quality")
)  # fmt: skip
STOCK_COLUMNS = ("on_hand", "days_of_cover", "alert_level", "snapshot_date")
LEAD_TIME_COLUMNS = ("lead_time_mean_days", "lead_time_std_days", "lead_time_source",
                     "lead_time_samples")  # fmt: skip


@dataclass(frozen=True)
class Demo:
    gold: dict[str, pa.Table]
    forecast: dict[str, pa.Table]
    run: dict
    items: list[str]


@pytest.fixture(scope="module")
def demo(demo_gold) -> Demo:
    lake = Lake.from_settings(NovaSettings(var_dir=demo_gold).storage)
    _, versions = live_gold_versions(lake)
    forecast_versions = live_forecast_versions(lake)

    def read(name: str, version: int) -> pa.Table:
        return lake.delta_table("gold", name, version=version).to_pyarrow_table()

    runs = lake.delta_table("gold", FORECAST_RUNS).to_pyarrow_table()
    run = runs.sort_by([("finished_at", "descending")]).slice(0, 1).to_pylist()[0]
    policy = read("inventory_policy", forecast_versions["inventory_policy"])
    return Demo(
        gold={n: read(n, v) for n, v in versions.items() if n != "builds"},
        forecast={n: read(n, v) for n, v in forecast_versions.items()},
        run=run,
        # Items with a policy first: "one item" is then an item with everything.
        items=sorted(set(policy["item_code"].to_pylist())),
    )


def shaped(table: pa.Table, name: str, shape: dict, items: list[str] | None) -> pa.Table:
    """`table` as a lake of `shape` has it."""
    if items is not None and "item_code" in table.column_names:
        table = table.filter(pc.is_in(table["item_code"], pa.array(items, pa.string())))
    if shape["no_stock"] and name == "fact_stock":
        table = table.slice(0, 0)
    if shape["no_lead_times"] and name == "fact_lead_time":
        table = table.slice(0, 0)
    nulled = (STOCK_COLUMNS if shape["no_stock"] else ()) + (
        LEAD_TIME_COLUMNS if shape["no_lead_times"] else ()
    )
    if name == "inventory_policy":
        for column in nulled:
            if column in table.column_names:
                i = table.schema.get_field_index(column)
                field = table.schema.field(i)
                table = table.set_column(i, field, pa.nulls(table.num_rows, field.type))
    return table


def write_lake(root: Path, demo: Demo, shape: dict | None) -> Lake:
    """A lake of `shape` (None: nothing at all) under `root`."""
    lake = Lake.from_settings(StorageSettings(local_root=root))
    if shape is None:
        return lake
    items = {"all": None, "one": demo.items[:1], "none": []}[shape["items"]]
    versions = {
        name: lake.write_delta(
            "gold", name, shaped(table, name, shape, items), mode="overwrite"
        ).version
        for name, table in demo.gold.items()
    }
    build_id = uuid.uuid4().hex
    record_build(lake, build_id, versions, {"build_id": build_id, "kind": "build"})
    if not shape["no_forecast"]:
        forecast_versions = {
            name: lake.write_delta(
                "gold", name, shaped(table, name, shape, items), mode="overwrite"
            ).version
            for name, table in demo.forecast.items()
        }
        run_id = uuid.uuid4().hex
        row = {
            **demo.run,
            "run_id": run_id,
            "finished_at": datetime.now(UTC),
            "gold_build_id": build_id,
            "table_versions": json.dumps(forecast_versions),
        }
        lake.write_delta(
            "gold", FORECAST_RUNS, pa.Table.from_pylist([row]), mode="append",
            metadata={"run_id": run_id, "kind": "forecast"},
        )  # fmt: skip
    return lake


def requests_for(client: TestClient, codes: list[str]) -> list[tuple[str, dict]]:
    code = codes[0] if codes else "000000"
    quality = client.get("/api/v1/quality").json()
    build = quality.get("build_id") or "0" * 32
    asks: list[tuple[str, dict]] = [
        ("/health", {}), ("/ready", {}), ("/metrics", {}),
        ("/api/v1/status", {}), ("/api/v1/datasets", {}), ("/api/v1/ingestions", {}),
        ("/api/v1/quality", {}), (f"/api/v1/quality/reports/{build}", {}),
        ("/api/v1/items", {"sort": "-total_quantity"}), ("/api/v1/items", {"q": code}),
        (f"/api/v1/items/{code}", {}), ("/api/v1/sites", {}), ("/api/v1/suppliers", {}),
        ("/api/v1/demand", {}), ("/api/v1/demand", {"item": code, "grain": "month"}),
        ("/api/v1/forecasts", {"item": code}), ("/api/v1/forecasts/summary", {}),
        ("/api/v1/inventory/policy", {}), ("/api/v1/inventory/policy", {"item": code}),
        ("/api/v1/inventory/alerts", {}),
        ("/api/v1/inventory/alerts", {"level": ["critical", "attention", "monitor", "ok"]}),
        ("/api/v1/kpis/forecast-accuracy", {}),
    ]  # fmt: skip
    exports = [
        (path, {**params, "format": fmt})
        for path, params in asks
        if path in EXPORTED
        for fmt in ("csv", "parquet")
    ]
    return asks + exports


SHAPES = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "no_stock": st.booleans(),
            "no_forecast": st.booleans(),
            "no_lead_times": st.booleans(),
            "items": st.sampled_from(["all", "one", "none"]),
        }
    ),
)
ITEM_8 = {"no_stock": True, "no_forecast": False, "no_lead_times": False, "items": "all"}


@pytest.mark.slow
def test_no_endpoint_fails_on_partial_gold(demo, tmp_path_factory):
    @settings(
        max_examples=6,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @example(shape=None)
    @example(shape=ITEM_8)
    @example(shape={**ITEM_8, "no_stock": False, "no_lead_times": True})
    @example(shape={**ITEM_8, "no_stock": False, "no_forecast": True})
    @example(shape={**ITEM_8, "no_stock": False, "items": "one"})
    @given(shape=SHAPES)
    def check(shape: dict | None) -> None:
        lake = write_lake(tmp_path_factory.mktemp("partial") / "lake", demo, shape)
        app = create_app(ApiSettings(version_check_seconds=3600), lake)
        with TestClient(app, raise_server_exceptions=False) as client:
            client.get("/ready")
            codes = [i["item_code"] for i in client.get("/api/v1/items").json().get("items", [])]
            for path, params in requests_for(client, codes):
                response = client.get(path, params=params)
                if path == "/ready":  # not ready without gold: its 503 is the answer
                    continue
                assert response.status_code < 500, (shape, path, params, response.text[:300])
                if response.status_code >= 400:
                    assert response.headers["content-type"] == "application/problem+json"

    check()
