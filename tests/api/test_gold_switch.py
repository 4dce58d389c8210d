"""New gold versions mid-load: every answer comes from one build, none fails, none waits.

Each synthetic build k writes dim_item with request_lines = k, then (after a pause, like a real
build committing tables one by one) fact_demand whose only site is S<k>, then the build
manifest. `/api/v1/items/{code}` answers from both tables, so a response mixing two builds
shows as request_lines != the number in its site name.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import httpx
import pyarrow as pa
import pytest
import uvicorn
from fastapi import FastAPI

from services.api import gold as gold_module
from services.api.app import create_app
from services.api.gold import GoldState
from services.transformer.transforms import GOLD
from shared.manifests import live_gold_versions
from shared.settings import ApiSettings, StorageSettings
from shared.storage import Lake
from tests.api.conftest import record_build
from tests.conftest import free_port

CODES = [f"{n:06d}" for n in range(1, 6)]


def conform(rows: dict, name: str) -> pa.Table:
    schema = GOLD[name].schema
    count = len(next(iter(rows.values())))
    return pa.table({f.name: pa.array(rows.get(f.name, [None] * count), f.type) for f in schema})


def commit_build(lake: Lake, k: int, pause: float = 0.0) -> None:
    build_id = f"{k:032x}"
    meta = {"build_id": build_id}
    items = conform(
        {
            "item_code": CODES,
            "item_description": [f"ITEM {c}" for c in CODES],
            "request_lines": [k] * len(CODES),
        },
        "dim_item",
    )
    versions = {"dim_item": lake.write_delta("gold", "dim_item", items, mode="overwrite",
                                             metadata=meta).version}  # fmt: skip
    time.sleep(pause)  # readers looking now see a new dim_item and the old fact_demand
    demand = conform(
        {
            "demand_date": [date(2025, 1, 1)] * len(CODES),
            "item_code": CODES,
            "site_code": [f"S{k}"] * len(CODES),
            "quantity": [1.0] * len(CODES),
            "request_lines": [1] * len(CODES),
            "requests": [1] * len(CODES),
            "business_month": [date(2025, 1, 1)] * len(CODES),
        },
        "fact_demand",
    )
    versions["fact_demand"] = lake.write_delta(
        "gold", "fact_demand", demand, mode="overwrite", metadata=meta
    ).version
    record_build(lake, build_id, versions, meta)


@pytest.fixture
def lake(tmp_path):
    return Lake.from_settings(StorageSettings(local_root=tmp_path / "lake"))


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """`app` in a real uvicorn server (threads, sockets); yields its base URL."""
    port = free_port()
    # No log_level: uvicorn would set it on its process-wide loggers, for later tests too.
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def server(lake):
    """The API in a real server, checking gold every 20 ms."""
    commit_build(lake, 1)
    with serving(create_app(ApiSettings(version_check_seconds=0.02), lake)) as url:
        yield url


@pytest.mark.slow
def test_gold_updates_mid_load_give_no_mixed_or_failed_answers(lake, server):
    stop = threading.Event()
    answers: list[tuple[int, int, list[str], str]] = []
    failures: list[str] = []

    def load(worker: int) -> None:
        with httpx.Client(base_url=server, timeout=10) as http:
            n = 0
            while not stop.is_set():
                code = CODES[(worker + n) % len(CODES)]
                n += 1
                try:
                    response = http.get(f"/api/v1/items/{code}")
                except httpx.HTTPError as error:
                    failures.append(repr(error))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                    continue
                body = response.json()
                answers.append(
                    (worker, body["request_lines"], body["sites"], response.headers["etag"])
                )

    workers = [threading.Thread(target=load, args=(w,)) for w in range(6)]
    for w in workers:
        w.start()
    builds = 12
    for k in range(2, builds + 1):
        commit_build(lake, k, pause=0.15)
        time.sleep(0.1)
    # The load goes on until the last build is heard (the 20 ms check, then a load of the
    # new tables); a loaded CI machine can take seconds, so wait for it, within a bound.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(a[1] == builds for a in list(answers)):
        time.sleep(0.05)
    time.sleep(0.2)
    stop.set()
    for w in workers:
        w.join(timeout=30)

    assert not failures, failures[:5]
    mixed = [a for a in answers if a[2] != [f"S{a[1]}"]]
    assert not mixed, f"{len(mixed)} of {len(answers)} answers mixed two builds: {mixed[:3]}"
    seen = {a[1] for a in answers}
    assert len(answers) > 200
    assert builds in seen, "the last build was served"
    assert len(seen) >= builds // 2, f"switched through builds while loaded: {sorted(seen)}"
    # One ETag per build: a cached answer is never reused across versions.
    tags: dict[str, set[int]] = {}
    for _, k, _, tag in answers:
        tags.setdefault(tag, set()).add(k)
    assert all(len(ks) == 1 for ks in tags.values())


def test_a_switch_never_makes_readers_wait_for_a_load(lake, monkeypatch):
    """The refresher loads the new version while readers keep getting the old view."""
    commit_build(lake, 1)
    state = GoldState(lake)
    state.refresh()
    assert state.current.table("dim_item").data["request_lines"][0].as_py() == 1
    commit_build(lake, 2)
    real_load = gold_module.load_table
    loading = threading.Event()

    def slow_load(lake_, name, version):
        loading.set()
        time.sleep(1.0)
        return real_load(lake_, name, version)

    monkeypatch.setattr(gold_module, "load_table", slow_load)
    switcher = threading.Thread(target=state.refresh)
    switcher.start()
    assert loading.wait(5)
    started = time.perf_counter()
    view = state.current
    lines = view.table("dim_item").data["request_lines"][0].as_py()
    waited = time.perf_counter() - started
    switcher.join()
    assert lines == 1, "the old view is served while the new one loads"
    assert waited < 0.2, f"a reader waited {waited:.2f} s"
    assert state.current.table("dim_item").data["request_lines"][0].as_py() == 2


def test_a_request_waiting_for_a_table_load_does_not_block_other_requests(lake, monkeypatch):
    """Cheap answers run on the event loop once tables are in memory; before that, a request
    that needs a table still loading must wait in a worker thread, not stall the server."""
    commit_build(lake, 1)
    real_load = gold_module.load_table
    release = threading.Event()
    loading = threading.Event()

    def blocked_load(lake_, name, version):
        if name == "fact_demand":
            loading.set()
            assert release.wait(30), "the test never released the load"
        return real_load(lake_, name, version)

    monkeypatch.setattr(gold_module, "load_table", blocked_load)
    answers: dict[str, httpx.Response] = {}
    with serving(create_app(ApiSettings(version_check_seconds=3600), lake)) as url:
        try:
            assert loading.wait(20), "the preload never reached fact_demand"
            demand = threading.Thread(
                target=lambda: answers.update(
                    demand=httpx.get(f"{url}/api/v1/demand?item={CODES[0]}", timeout=30)
                )
            )
            demand.start()
            # Both the preload and that request wait for the load; the server answers others.
            health = httpx.get(f"{url}/health", timeout=10)
            items = httpx.get(f"{url}/api/v1/items", timeout=10)
            assert demand.is_alive(), "the demand request waits for its table"
        finally:
            release.set()
        demand.join(timeout=30)
    assert health.status_code == 200
    assert items.status_code == 200 and items.json()["total"] == len(CODES)
    assert answers["demand"].status_code == 200
    assert answers["demand"].json()["points"][0]["quantity"] == 1.0


def test_a_half_written_build_is_not_served(lake):
    commit_build(lake, 1)
    state = GoldState(lake)
    state.refresh()
    items = conform({"item_code": CODES, "request_lines": [99] * len(CODES)}, "dim_item")
    lake.write_delta("gold", "dim_item", items, mode="overwrite")  # no manifest follows
    assert state.refresh() is False
    assert state.current.table("dim_item").data["request_lines"][0].as_py() == 1


def test_storage_down_keeps_the_view_and_reports_not_ready(lake, monkeypatch):
    commit_build(lake, 1)
    app = create_app(ApiSettings(version_check_seconds=3600), lake)
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        assert client.get("/api/v1/items/000001").status_code == 200

        def down(*args, **kwargs):
            raise OSError("connection refused")

        monkeypatch.setattr(gold_module, "resolve_pin", down)
        assert app.state.gold.refresh() is False
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert "connection refused" in ready.json()["storage_error"]
        assert client.get("/api/v1/items/000001").json()["request_lines"] == 1
        monkeypatch.undo()
        commit_build(lake, 2)
        assert app.state.gold.refresh() is True
        assert client.get("/ready").status_code == 200
        assert client.get("/api/v1/items/000001").json()["request_lines"] == 2


def test_a_version_check_storage_does_not_answer_makes_the_api_not_ready(lake, monkeypatch):
    """A silent storage endpoint raises nothing for as long as the client waits: readiness
    must turn 503 once a check has waited too long, and back once storage answers."""
    commit_build(lake, 1)
    state = GoldState(lake, stall_seconds=0.3)
    state.refresh()
    assert state.storage_problem is None
    answering = threading.Event()
    checking = threading.Event()
    real_resolve = gold_module.resolve_pin

    def silent(lake_):
        checking.set()
        assert answering.wait(30), "the test never let storage answer"
        return real_resolve(lake_)

    monkeypatch.setattr(gold_module, "resolve_pin", silent)
    commit_build(lake, 2)
    check = threading.Thread(target=state.refresh)
    check.start()
    try:
        assert checking.wait(10)
        deadline = time.monotonic() + 20
        while state.storage_problem is None:
            assert time.monotonic() < deadline, "a stalled check was never reported"
            time.sleep(0.05)
        assert "has not answered a version check" in state.storage_problem
        assert f"(lake at {lake.location})" in state.storage_problem  # which storage, too
        assert state.current.table("dim_item").data["request_lines"][0].as_py() == 1
    finally:
        answering.set()
        check.join(timeout=30)
    assert state.storage_problem is None
    assert state.current.table("dim_item").data["request_lines"][0].as_py() == 2


def test_ready_reports_a_stalled_storage_check(lake, monkeypatch):
    commit_build(lake, 1)
    app = create_app(ApiSettings(version_check_seconds=3600), lake)
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        deadline = time.monotonic() + 20
        while client.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.05)
        monkeypatch.setattr(
            type(app.state.gold),
            "storage_problem",
            property(lambda self: "storage has not answered a version check for 12 s"),
        )
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["storage_error"].startswith("storage has not answered")
        assert client.get("/api/v1/status").json()["storage_error"].startswith("storage has not")


def test_a_first_forecast_run_is_not_served_before_its_manifest(lake):
    """The forecaster commits fact_forecast, accuracy and policy, then its manifest: a reader
    looking in between (no manifest yet) must not serve the forecast without its policy."""
    commit_build(lake, 1)
    partial = pa.table({"item_code": CODES, "run_id": ["r1"] * len(CODES)})
    lake.write_delta("gold", "fact_forecast", partial, mode="overwrite")
    pin = gold_module.resolve_pin(lake)
    assert "fact_forecast" not in pin.versions
    assert pin.versions["dim_item"] == 0


def test_a_first_build_is_not_served_before_its_manifest(lake):
    """A first build commits its tables one by one, then its row of gold.builds: before that
    row nothing is served (/ready says not ready), never a half-written build."""
    items = conform({"item_code": CODES, "request_lines": [1] * len(CODES)}, "dim_item")
    lake.write_delta("gold", "dim_item", items, mode="overwrite")
    assert gold_module.resolve_pin(lake).versions == {}
    commit_build(lake, 1)
    assert gold_module.resolve_pin(lake).versions["dim_item"] == 1


def test_the_live_build_is_found_while_builds_are_being_committed(lake):
    """`DeltaTable.history` read during a commit can name a newer build than the version the
    table was opened at; the build manifest must still be found at every moment."""
    commit_build(lake, 1)
    misses: list[int] = []
    reads = 0
    stop = threading.Event()

    def read() -> None:
        nonlocal reads
        while not stop.is_set():
            reads += 1
            if live_gold_versions(lake) is None:
                misses.append(reads)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for k in range(2, 16):
            commit_build(lake, k, pause=0.05)
    finally:
        stop.set()
        reader.join(timeout=30)
    assert reads > 20
    assert misses == [], f"{len(misses)} of {reads} reads found no live build"
