"""Property-based run against the OpenAPI document: no request the spec allows, or any junk
in its place, gets a 5xx, and every error is a problem document.

Parameters are generated from each operation's schema (in range, at the edges and out of
range), mixed with arbitrary text and with codes that exist in the demo gold, so the runs
reach the deep paths (an item with a forecast, a site with demand) and not only validation.
"""

from __future__ import annotations

import string
from datetime import date
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.api.app import create_app
from shared.settings import ApiSettings, NovaSettings
from shared.storage import Lake


@pytest.fixture(scope="module")
def app_and_values(demo_gold):
    nova = NovaSettings(var_dir=demo_gold)
    lake = Lake.from_settings(nova.storage)
    app = create_app(
        ApiSettings(version_check_seconds=3600, max_date_range_days=800),
        lake,
        quarantine_dir=nova.ingestor.quarantine_dir,
    )
    forecasts = lake.delta_table("gold", "fact_forecast").to_pyarrow_table()
    demand = lake.delta_table("gold", "fact_demand").to_pyarrow_table()
    known = {
        "codes": sorted(set(forecasts["item_code"].to_pylist()))[:10]
        + sorted(set(demand["item_code"].to_pylist()))[:10],
        "sites": sorted({s for s in demand["site_code"].to_pylist() if s})[:10],
    }
    with TestClient(app, raise_server_exceptions=False) as client:
        quality = client.get("/api/v1/quality").json()
        known["builds"] = [quality["build_id"]] if quality["build_id"] else []
        yield client, app.openapi(), known


JUNK = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=string.printable, max_size=5),
    st.sampled_from(["", " ", "-1", "0", "1e309", "NaN", "null", "../..", "%00", "é", "0" * 200]),
)


def for_schema(schema: dict[str, Any], name: str, known: dict[str, list[str]]) -> st.SearchStrategy:
    options = schema.get("anyOf") or [schema]
    strategies: list[st.SearchStrategy] = [JUNK]
    for option in options:
        kind = option.get("type")
        if "enum" in option:
            strategies.append(st.sampled_from(option["enum"]))
        elif kind == "integer":
            low, high = option.get("minimum", -(2**31)), option.get("maximum", 2**31)
            strategies += [
                st.integers(low, high),
                st.sampled_from([low - 1, low, high, high + 1, 2**63]),
            ]
        elif kind == "array":
            strategies.append(st.lists(for_schema(option["items"], name, known), max_size=3))
        elif kind == "string" and option.get("format") == "date":
            strategies.append(st.dates(date(1900, 1, 1), date(2100, 1, 1)).map(str))
        elif kind == "string" and "pattern" in option:
            strategies.append(st.from_regex(option["pattern"], fullmatch=True))
        elif kind == "string":
            strategies.append(st.text(max_size=option.get("maxLength", 50) + 2))
    if name in ("item", "code") and known["codes"]:
        strategies.append(st.sampled_from(known["codes"]))
    if name == "site" and known["sites"]:
        strategies.append(st.sampled_from(known["sites"]))
    if name == "build_id" and known["builds"]:
        strategies.append(st.sampled_from(known["builds"]))
    return st.one_of(strategies)


def operations(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(path, ops["get"]) for path, ops in sorted(spec["paths"].items()) if "get" in ops]


@pytest.mark.slow
def test_no_request_gets_a_5xx(app_and_values):
    client, spec, known = app_and_values
    ops = operations(spec)
    assert len(ops) >= 18, "every endpoint is in the spec"
    seen: dict[int, int] = {}

    @settings(
        max_examples=600,
        derandomize=True,  # the same requests every run: reproducible, and a stable run time
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        path, op = data.draw(st.sampled_from(ops))
        params: dict[str, Any] = {}
        url = path
        for parameter in op.get("parameters", []):
            name = parameter["name"]
            value = data.draw(for_schema(parameter["schema"], name, known), label=name)
            if parameter["in"] == "path":
                url = url.replace("{" + name + "}", quote(str(value) or "x", safe=""))
            elif parameter.get("required") or data.draw(st.booleans()):
                params[name] = value
        response = client.get(url, params=params)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (url, params, response.text[:500])
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json", (url, params)
            assert response.json()["status"] == response.status_code

    check()
    assert seen.get(200, 0) > 60, f"the run reached real answers, not only errors: {seen}"
    assert seen.get(422, 0) > 50, f"and invalid parameters: {seen}"
