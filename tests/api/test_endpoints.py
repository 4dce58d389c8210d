"""Contract tests of every endpoint over gold built from demo data by the real pipeline.

Expected values are computed here from the Delta tables directly (pandas), not taken from the
API, so a wrong filter, join or aggregation in the API fails a test.
"""

from __future__ import annotations

import io
import json
import time
from datetime import date, timedelta
from itertools import pairwise

import pandas as pd
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from shared.manifests import live_forecast_versions
from shared.settings import ApiSettings, NovaSettings
from shared.storage import Lake

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def settings(demo_gold):
    return NovaSettings(var_dir=demo_gold)


@pytest.fixture(scope="module")
def lake(settings):
    return Lake.from_settings(settings.storage)


@pytest.fixture(scope="module")
def client(settings, lake):
    quarantine = settings.ingestor.quarantine_dir
    quarantine.mkdir(parents=True, exist_ok=True)
    (quarantine / "broken.csv").write_text("x")
    (quarantine / "broken.csv.error.json").write_text(
        json.dumps({"dataset": "stock_movements", "reason": "no header row", "time": "t"})
    )
    app = create_app(
        ApiSettings(version_check_seconds=3600, max_page_size=100),
        lake,
        quarantine_dir=quarantine,
    )
    with TestClient(app) as test_client:
        yield test_client


def gold(lake, name):
    versions = live_forecast_versions(lake) or {}
    table = lake.delta_table("gold", name, version=versions.get(name))
    return table.to_pyarrow_table().to_pandas()


def ok(client, path, **params):
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def problem(client, path, status, **params):
    response = client.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    assert "Traceback" not in response.text
    return body


@pytest.fixture(scope="module")
def forecast_item(lake):
    """An item with a forecast, a policy and item x site series where the demo has them."""
    forecasts = gold(lake, "fact_forecast")
    with_site = forecasts[forecasts["site_code"].notna()]["item_code"]
    return (with_site if len(with_site) else forecasts["item_code"]).iloc[0]


# --- items, sites, suppliers ----------------------------------------------------------------


def test_items_total_and_order_match_dim_item(client, lake):
    expected = gold(lake, "dim_item").sort_values("item_code")
    body = ok(client, "/api/v1/items", limit=100)
    assert body["total"] == len(expected)
    assert [i["item_code"] for i in body["items"]] == list(expected["item_code"])[:100]


def test_items_filters_combine(client, lake):
    items = gold(lake, "dim_item")
    family = items["item_family"].mode()[0]
    klass = items[items["item_family"] == family]["demand_class"].mode()[0]
    expected = items[(items["item_family"] == family) & (items["demand_class"] == klass)]
    body = ok(client, "/api/v1/items", family=family.lower(), demand_class=klass, limit=100)
    assert body["total"] == len(expected) > 0
    assert {i["item_code"] for i in body["items"]} == set(expected["item_code"])


def test_items_sort_descending_with_code_as_tie_break(client, lake):
    items = gold(lake, "dim_item").sort_values(
        ["total_quantity", "item_code"], ascending=[False, True]
    )
    body = ok(client, "/api/v1/items", sort="-total_quantity", limit=5)
    assert [i["item_code"] for i in body["items"]] == list(items["item_code"][:5])


def test_items_search_matches_description_ignoring_case(client, lake):
    items = gold(lake, "dim_item")
    word = items["item_description"].iloc[0].split()[0]
    expected = items[items["item_description"].str.upper().str.contains(word.upper(), regex=False)
                     | items["item_code"].str.contains(word.upper(), regex=False)]  # fmt: skip
    body = ok(client, "/api/v1/items", q=word.lower(), limit=100)
    assert body["total"] == len(expected) > 0


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "price"},
        {"demand_class": "weird"},
        {"limit": 101},
        {"offset": -1},
        {"q": "x" * 101},
    ],
)
def test_items_bad_parameters_are_422_problems(client, params):
    body = problem(client, "/api/v1/items", 422, **params)
    assert body["errors"], "each invalid parameter is named"


def test_item_detail(client, lake, forecast_item):
    body = ok(client, f"/api/v1/items/{forecast_item}")
    demand = gold(lake, "fact_demand")
    sites = sorted(demand[demand["item_code"] == forecast_item]["site_code"].dropna().unique())
    forecasts = gold(lake, "fact_forecast")
    series = sorted(forecasts[forecasts["item_code"] == forecast_item]["series_id"].unique())
    assert body["item_code"] == forecast_item
    assert body["sites"] == sites
    assert body["forecast_series"] == series
    policy = gold(lake, "inventory_policy").set_index("item_code").loc[forecast_item]
    assert body["policy"]["reorder_point"] == pytest.approx(policy["reorder_point"])


def test_unknown_item_is_a_404_problem(client):
    body = problem(client, "/api/v1/items/NO-SUCH-ITEM", 404)
    assert "NO-SUCH-ITEM" in body["detail"]
    assert body["instance"] == "/api/v1/items/NO-SUCH-ITEM"


def test_sites_and_suppliers(client, lake):
    sites = gold(lake, "dim_site")
    body = ok(client, "/api/v1/sites", limit=100)
    assert body["total"] == len(sites)
    state = sites["state"].dropna().mode()[0]
    assert (
        ok(client, "/api/v1/sites", state=state.lower())["total"] == (sites["state"] == state).sum()
    )
    suppliers = gold(lake, "dim_supplier")
    body = ok(client, "/api/v1/suppliers", limit=3)
    assert body["total"] == len(suppliers)
    counts = [s["order_count"] for s in body["suppliers"]]
    assert counts == sorted(suppliers["order_count"], reverse=True)[:3]


# --- demand ---------------------------------------------------------------------------------


@pytest.mark.parametrize("grain", ["day", "week", "month"])
def test_demand_sums_match_the_fact_table(client, lake, forecast_item, grain):
    demand = gold(lake, "fact_demand")
    rows = demand[demand["item_code"] == forecast_item]
    body = ok(client, "/api/v1/demand", item=forecast_item, grain=grain)
    points = body["points"]
    assert sum(p["quantity"] for p in points) == pytest.approx(rows["quantity"].sum())
    assert sum(p["request_lines"] for p in points) == rows["request_lines"].sum()
    periods = [date.fromisoformat(p["period"]) for p in points]
    assert periods == sorted(periods) and len(set(periods)) == len(periods)
    if grain == "week":
        assert all(p.weekday() == 0 for p in periods)
        assert all((b - a).days == 7 for a, b in pairwise(periods))
    if grain == "month":
        assert all(p.day == 1 for p in periods)


def test_demand_for_one_site_and_range(client, lake, forecast_item):
    demand = gold(lake, "fact_demand")
    rows = demand[demand["item_code"] == forecast_item]
    site = rows["site_code"].mode()[0]
    first, last = rows["demand_date"].min(), rows["demand_date"].max()
    middle = first + (last - first) / 2
    chosen = rows[(rows["site_code"] == site) & (rows["demand_date"] >= middle)]
    body = ok(
        client, "/api/v1/demand", item=forecast_item, site=site, grain="day",
        **{"from": middle.isoformat(), "to": last.isoformat()},
    )  # fmt: skip
    assert len(body["points"]) == (last - middle).days + 1, "every day in range, 0 when none"
    assert sum(p["quantity"] for p in body["points"]) == pytest.approx(chosen["quantity"].sum())


def test_demand_of_all_items(client, lake):
    demand = gold(lake, "fact_demand")
    body = ok(client, "/api/v1/demand", grain="month")
    assert sum(p["quantity"] for p in body["points"]) == pytest.approx(demand["quantity"].sum())


def test_demand_errors(client):
    problem(client, "/api/v1/demand", 404, item="NO-SUCH-ITEM")
    problem(client, "/api/v1/demand", 422, grain="year")
    problem(client, "/api/v1/demand", 422, **{"from": "2025-02-30"})
    body = problem(client, "/api/v1/demand", 422, **{"from": "2025-01-02", "to": "2025-01-01"})
    assert "after" in body["detail"]
    start = date(2000, 1, 1)
    body = problem(
        client, "/api/v1/demand", 422,
        **{"from": start.isoformat(), "to": (start + timedelta(days=3701)).isoformat()},
    )  # fmt: skip
    assert "3700" in body["detail"]


# --- forecasts ------------------------------------------------------------------------------


def test_forecasts_of_one_item(client, lake, forecast_item):
    forecasts = gold(lake, "fact_forecast")
    rows = forecasts[forecasts["item_code"] == forecast_item]
    body = ok(client, "/api/v1/forecasts", item=forecast_item, site="*")
    assert body["run_id"] == rows["run_id"].iloc[0]
    assert body["bucket"] == "week"
    assert {s["series_id"] for s in body["series"]} == set(rows["series_id"])
    for series in body["series"]:
        expected = rows[rows["series_id"] == series["series_id"]].sort_values("step")
        assert series["model"] == expected["model"].iloc[0]
        assert [p["step"] for p in series["points"]] == list(expected["step"])
        assert [p["p90"] for p in series["points"]] == pytest.approx(list(expected["p90"]))
        assert all(p["p10"] <= p["p50"] <= p["p90"] for p in series["points"])
        # Recent actuals run right up to the forecast, every week, even for a site series
        # whose last demand came earlier.
        start = date.fromisoformat(series["points"][0]["period"])
        weeks = [date.fromisoformat(h["period"]) for h in series["history"]]
        assert weeks[-1] == start - timedelta(days=7)
        assert all((b - a).days == 7 for a, b in pairwise(weeks))
        assert all(p["actual"] is None for p in series["points"]), "the future is not known"


def test_forecast_horizon_and_site_filters(client, lake, forecast_item):
    forecasts = gold(lake, "fact_forecast")
    rows = forecasts[(forecasts["item_code"] == forecast_item) & forecasts["site_code"].notna()]
    body = ok(client, "/api/v1/forecasts", item=forecast_item, horizon=3, site="*")
    assert all(len(s["points"]) == 3 for s in body["series"])
    overall = ok(client, "/api/v1/forecasts", item=forecast_item)
    assert [s["series_id"] for s in overall["series"]] == [forecast_item], "all sites together"
    assert len(rows), "the demo has item x site series"
    site = rows["site_code"].iloc[0]
    body = ok(client, "/api/v1/forecasts", item=forecast_item, site=site)
    assert [s["site_code"] for s in body["series"]] == [site]
    problem(client, "/api/v1/forecasts", 404, item=forecast_item, site="NO-SUCH-SITE")


def test_forecast_errors(client, lake):
    problem(client, "/api/v1/forecasts", 422)  # item is required
    problem(client, "/api/v1/forecasts", 404, item="NO-SUCH-ITEM")
    items = set(gold(lake, "dim_item")["item_code"])
    without = sorted(items - set(gold(lake, "fact_forecast")["item_code"]))
    if without:  # items with too little history have no forecast
        body = problem(client, "/api/v1/forecasts", 404, item=without[0])
        assert body["title"] == "No forecast"
    problem(client, "/api/v1/forecasts", 422, item="x", horizon=0)


def test_forecast_summary_adds_item_level_series(client, lake):
    forecasts = gold(lake, "fact_forecast")
    overall = forecasts[forecasts["site_code"].isna()]
    body = ok(client, "/api/v1/forecasts/summary")
    by_period = overall.groupby("period")["mean"].sum()
    assert len(body["periods"]) == len(by_period)
    for point in body["periods"]:
        assert point["mean"] == pytest.approx(by_period[date.fromisoformat(point["period"])])
        assert point["items"] == point["series"]


# --- inventory ------------------------------------------------------------------------------


def test_policy_of_one_item_and_all(client, lake, forecast_item):
    policy = gold(lake, "inventory_policy")
    body = ok(client, "/api/v1/inventory/policy", item=forecast_item)
    assert body["total"] == 1
    row = body["policies"][0]
    expected = policy.set_index("item_code").loc[forecast_item]
    for field in (
        "safety_stock", "reorder_point", "service_level", "lead_time_mean_days",
        "expected_service_level", "order_quantity", "order_up_to", "evidence_periods",
    ):  # fmt: skip
        assert row[field] == pytest.approx(expected[field])
    assert row["method"] == expected["method"]
    assert ok(client, "/api/v1/inventory/policy", limit=100)["total"] == len(policy)
    problem(client, "/api/v1/inventory/policy", 404, item="NO-SUCH-ITEM")


def test_alerts_are_the_urgent_levels_most_urgent_first(client, lake):
    policy = gold(lake, "inventory_policy")
    urgent = policy[policy["alert_level"].isin(["critical", "attention"])]
    body = ok(client, "/api/v1/inventory/alerts", limit=100)
    assert body["total"] == len(urgent)
    ranks = [("critical", "attention").index(a["alert_level"]) for a in body["alerts"]]
    assert ranks == sorted(ranks)
    assert all(a["item_description"] for a in body["alerts"])
    every = ok(client, "/api/v1/inventory/alerts", level=["ok", "monitor"], limit=100)
    assert every["total"] == policy["alert_level"].isin(["ok", "monitor"]).sum()
    problem(client, "/api/v1/inventory/alerts", 422, level="panic")


# --- KPIs, quality, catalog -----------------------------------------------------------------


@pytest.mark.parametrize("by", ["demand_class", "model", "family"])
def test_forecast_accuracy_groups(client, lake, by):
    accuracy = gold(lake, "forecast_accuracy")
    chosen = accuracy[accuracy["selected"]]
    if by == "family":
        families = gold(lake, "dim_item")[["item_code", "item_family"]]
        chosen = chosen.merge(families, on="item_code", how="left")
    column = {"family": "item_family"}.get(by, by)
    body = ok(client, "/api/v1/kpis/forecast-accuracy", by=by)
    groups = {g["group"]: g for g in body["groups"]}
    assert sum(g["series"] for g in body["groups"]) == len(chosen)
    for name, rows in chosen.groupby(column):
        assert groups[name]["series"] == len(rows)
        mase = rows["mase"].mean()  # NaN: no series of the group has a backtest
        assert groups[name]["mase"] == (None if pd.isna(mase) else pytest.approx(mase))
    problem(client, "/api/v1/kpis/forecast-accuracy", 422, by="weather")


def test_quality_results_and_report(client, lake):
    body = ok(client, "/api/v1/quality")
    results = gold(lake, "dq_results")
    latest = results[results["build_id"] == body["build_id"]]
    assert len(body["checks"]) == len(latest) > 0
    assert body["passed"] == latest["passed"].sum()
    report = client.get(body["report_url"])
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/html")
    assert body["build_id"] in report.text
    problem(client, "/api/v1/quality/reports/0123456789abcdef", 404)
    problem(client, "/api/v1/quality/reports/..%2F..%2Fetc", 404)


def test_datasets_catalog(client, lake):
    body = ok(client, "/api/v1/datasets")
    by_table = {d["table"]: d for d in body["datasets"]}
    for name in ("dim_item", "fact_demand", "fact_forecast", "inventory_policy", "dq_results"):
        entry = by_table[f"gold.{name}"]
        assert entry["row_count"] == len(gold(lake, name))
        assert entry["columns"] and all(c["type"] for c in entry["columns"])
        assert entry["committed_at"] and entry["age_seconds"] >= 0
    assert "item_code" in {c["name"] for c in by_table["gold.dim_item"]["columns"]}
    assert by_table["gold.fact_demand"]["lineage"]["build_id"]
    assert body["build_id"] and body["run_id"]
    time.sleep(0.05)
    later = {d["table"]: d for d in ok(client, "/api/v1/datasets")["datasets"]}
    assert later["gold.dim_item"]["age_seconds"] > by_table["gold.dim_item"]["age_seconds"]


def test_demand_runs_to_the_end_of_gold_history(client, lake):
    demand = gold(lake, "fact_demand")
    last_day = demand["demand_date"].max()
    counts = demand.groupby("item_code")["demand_date"].max()
    early = counts[counts < last_day - timedelta(days=60)].index[0]
    body = ok(client, "/api/v1/demand", item=early, grain="week")
    assert date.fromisoformat(body["points"][-1]["period"]) == last_day - timedelta(
        days=last_day.weekday()
    )
    assert body["points"][-1]["quantity"] == 0.0


def test_ingestions_show_the_quarantine(client):
    body = ok(client, "/api/v1/ingestions")
    assert body["events_connected"] is False  # this app has no feed
    assert body["quarantine_count"] == 1
    assert body["quarantine"][0] == {
        "name": "broken.csv",
        "dataset": "stock_movements",
        "reason": "no header row",
        "quarantined_at": "t",
    }


def test_an_absent_quarantine_folder_means_nothing_quarantined(lake, tmp_path):
    app = create_app(ApiSettings(), lake, quarantine_dir=tmp_path / "never-created")
    with TestClient(app) as client:
        body = ok(client, "/api/v1/ingestions")
    assert (body["quarantine_count"], body["quarantine"]) == (0, [])


def test_status_names_the_last_build_and_run(client, lake):
    body = ok(client, "/api/v1/status")
    runs = gold(lake, "forecast_runs")
    assert body["last_forecast_run"]["run_id"] == runs["run_id"].iloc[-1]
    assert body["build_id"] and body["versions"]["fact_demand"] >= 0
    assert body["storage_error"] is None


# --- formats, time travel, caching ----------------------------------------------------------


def test_csv_and_parquet_exports_hold_the_whole_result(client, lake):
    items = gold(lake, "dim_item")
    csv = client.get("/api/v1/items", params={"format": "csv", "limit": 1})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    exported = pd.read_csv(io.StringIO(csv.text), dtype={"item_code": str})
    assert sorted(exported["item_code"]) == sorted(items["item_code"])
    parquet = client.get("/api/v1/items", params={"format": "parquet", "demand_class": "lumpy"})
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == (items["demand_class"] == "lumpy").sum()
    problem(client, "/api/v1/items", 422, format="xlsx")


def test_as_of_version_reads_the_past(client, lake):
    history = lake.delta_table("gold", "fact_demand").history()
    oldest = min(h["version"] for h in history)
    past = lake.delta_table("gold", "fact_demand", version=oldest).to_pyarrow_table().to_pandas()
    body = ok(client, "/api/v1/demand", grain="month", as_of_version=oldest)
    assert sum(p["quantity"] for p in body["points"]) == pytest.approx(past["quantity"].sum())
    response = client.get("/api/v1/demand", params={"grain": "month", "as_of_version": oldest})
    assert response.headers["x-gold-version"] == str(oldest)
    started = time.monotonic()
    body = problem(client, "/api/v1/demand", 404, as_of_version=2**31)
    assert time.monotonic() - started < 2, "a version far beyond the log is refused at once"
    assert "latest served" in body["detail"]


TABLE_ENDPOINTS = [
    ("/api/v1/items", "dim_item", {}),
    ("/api/v1/sites", "dim_site", {}),
    ("/api/v1/suppliers", "dim_supplier", {}),
    ("/api/v1/demand", "fact_demand", {"grain": "month"}),
    ("/api/v1/forecasts", "fact_forecast", {"item": None}),
    ("/api/v1/forecasts/summary", "fact_forecast", {}),
    ("/api/v1/inventory/policy", "inventory_policy", {}),
    ("/api/v1/inventory/alerts", "inventory_policy", {"level": "ok"}),
    ("/api/v1/kpis/forecast-accuracy", "forecast_accuracy", {}),
    ("/api/v1/quality", "dq_results", {}),
]


@pytest.mark.parametrize(("path", "name", "params"), TABLE_ENDPOINTS)
def test_every_table_endpoint_travels_in_time_and_exports(
    client, lake, forecast_item, path, name, params
):
    params = {k: forecast_item if v is None else v for k, v in params.items()}
    version = lake.delta_table("gold", name).version()
    now = client.get(path, params=params)
    past = client.get(path, params={**params, "as_of_version": version})
    assert now.status_code == past.status_code == 200, past.text
    assert past.headers["x-gold-version"] == str(version)
    assert past.json() == now.json(), "the current version read through time travel"
    problem(client, path, 404, **params, as_of_version=2**31)
    for fmt in ("csv", "parquet"):
        export = client.get(path, params={**params, "format": fmt})
        assert export.status_code == 200, export.text
        if fmt == "parquet":
            assert pq.read_table(io.BytesIO(export.content)).num_rows > 0
        else:
            assert len(export.text.splitlines()) > 1


def test_forecasts_of_an_older_run_come_with_that_runs_id(client, lake, forecast_item):
    history = lake.delta_table("gold", "fact_forecast").history()
    oldest = min(h["version"] for h in history)
    past = lake.delta_table("gold", "fact_forecast", version=oldest).to_pyarrow_table()
    past = past.to_pandas()
    item = past["item_code"].iloc[0]
    body = ok(client, "/api/v1/forecasts", item=item, as_of_version=oldest)
    assert body["run_id"] == past["run_id"].iloc[0]
    item_level = past[(past["item_code"] == item) & past["site_code"].isna()]
    [series] = body["series"]
    assert [p["p50"] for p in series["points"]] == pytest.approx(
        list(item_level.sort_values("step")["p50"])
    )


def test_etag_gives_304_and_cache_control(client):
    first = client.get("/api/v1/items", params={"limit": 3})
    assert "max-age" in first.headers["cache-control"]
    etag = first.headers["etag"]
    again = client.get("/api/v1/items", params={"limit": 3}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = client.get("/api/v1/items", params={"limit": 3, "format": "csv"})
    assert other.headers["etag"] != etag, "a representation has its own tag"


# --- operations, limits ---------------------------------------------------------------------


def test_health_ready_metrics(client):
    assert ok(client, "/health") == {"status": "ok"}
    deadline = time.monotonic() + 30
    while client.get("/ready").status_code != 200:  # tables load in the background
        assert time.monotonic() < deadline, client.get("/ready").json()
        time.sleep(0.05)
    ready = ok(client, "/ready")
    assert ready["ready"] is True and ready["loading"] is False
    assert ready["versions"]["dim_item"] >= 0
    client.get("/api/v1/items/NO-SUCH-ITEM")
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert 'nova_api_requests_total{route="/api/v1/items/{code}",status="404"}' in metrics.text
    assert 'nova_api_gold_version{table="gold.dim_item"}' in metrics.text


def test_not_ready_before_any_gold(tmp_path):
    lake = Lake.from_settings(NovaSettings(var_dir=tmp_path).storage)
    with TestClient(create_app(ApiSettings(), lake)) as client:
        response = client.get("/ready")
        assert response.status_code == 503 and response.json()["ready"] is False
        assert ok(client, "/api/v1/items")["total"] == 0
        assert ok(client, "/api/v1/datasets")["datasets"] == []
        assert ok(client, "/api/v1/kpis/forecast-accuracy")["groups"] == []
        problem(client, "/api/v1/forecasts", 404, item="x")


def test_limits(client):
    problem(client, "/api/v1/items", 414, q="x" * 3000)
    response = client.request("GET", "/api/v1/items", content=b"x" * 10)
    assert response.status_code == 413 and response.headers["content-type"] == PROBLEM
    problem(client, "/nowhere", 404)
    response = client.post("/api/v1/items")
    assert response.status_code == 405 and response.headers["content-type"] == PROBLEM


def test_an_unexpected_error_is_a_500_problem_without_details(lake, monkeypatch):
    app = create_app(ApiSettings(), lake)

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr("services.api.queries.search", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/items", params={"q": "x"})
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert "secret" not in response.text and "Traceback" not in response.text


# --- API keys and CORS ----------------------------------------------------------------------


def test_api_keys_guard_api_routes_only(lake):
    app = create_app(ApiSettings(keys="alpha, beta", cors_origins="http://planner.local"), lake)
    with TestClient(app) as client:
        denied = client.get("/api/v1/items")
        assert denied.status_code == 401 and denied.headers["content-type"] == PROBLEM
        assert denied.headers["www-authenticate"].startswith("Bearer")
        assert client.get("/api/v1/items", headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.get("/api/v1/items", headers={"X-API-Key": "beta"}).status_code == 200
        bearer = {"Authorization": "Bearer alpha"}
        assert client.get("/api/v1/items", headers=bearer).status_code == 200
        for open_route in ("/health", "/ready", "/metrics"):
            assert client.get(open_route).status_code in (200, 503)  # never 401
        preflight = client.options(
            "/api/v1/items",
            headers={"Origin": "http://planner.local", "Access-Control-Request-Method": "GET"},
        )
        assert preflight.headers["access-control-allow-origin"] == "http://planner.local"
        evil = client.get("/health", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in evil.headers
