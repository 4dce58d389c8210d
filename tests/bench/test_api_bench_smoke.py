"""Smoke test of the API benchmark: `python -m bench.api --quick` runs end to end."""

import pytest

ENDPOINTS = ("items", "demand", "forecasts", "alerts")


@pytest.mark.slow
def test_quick_run_loads_every_endpoint_and_the_ceiling_without_errors(quick_run):
    completed, results = quick_run("api")
    assert results["errors"] == {}
    assert results["request_errors"] == 0, completed.stdout[-3000:]

    # The API served the generated build and forecast run, not something else.
    gold = results["inputs"]["gold"]
    assert results["ready"]["build_id"] == gold["build_id"]
    assert results["ready"]["run_id"] == gold["run_id"]
    assert gold["tables"]["fact_demand"] == results["parameters"]["rows"]

    phases = {(p["endpoint"], p["result"]["mode"]): p["result"] for p in results["phases"]}
    expected = {(e, m) for e in ENDPOINTS for m in ("repeat", "unique")}
    assert expected | {("ceiling", "repeat"), ("ceiling_sync", "repeat")} == set(phases)
    for key, result in phases.items():
        assert result["requests"] > 0, key
        assert result["errors"] == 0, (key, result["error_samples"])
        assert result["statuses"] == {"200": result["requests"]}, key
        assert 0 < result["p50_ms"] <= result["p99_ms"], key
        assert result["mean_body_bytes"] > 0, key
    assert results["ceiling_requests_per_second"] > 0
    assert results["startup"]["API (/api/v1/items?limit=50)"]["spawn_to_first_answer_s"] > 0
    assert {f["endpoint"] for f in results["first_requests"]} == set(ENDPOINTS)
    assert all(f["status"] == 200 for f in results["first_requests"])

    checks = {c["key"]: c["status"] for c in results["checks"] if c["target"]}
    assert "first_answer" in checks
    assert "demand_repeat_p99" not in checks  # keys name the cache state, not the mode
    assert {"demand_cached_p99", "forecasts_uncached_p99", "alerts_cached_vs_ceiling"} <= set(
        checks
    )
    assert set(checks.values()) <= {"met", "MISS"}
    # The same ratio in server CPU per request is reported without a target.
    untargeted = {c["key"] for c in results["checks"] if not c["target"]}
    assert "items_uncached_vs_ceiling_cpu" in untargeted
    for entry in results["phases"]:
        primed = entry["result"]["primed"]
        if entry["result"]["mode"] == "repeat" and not entry["endpoint"].startswith("ceiling"):
            # Every URL of the cached phase was requested once before the measurement.
            assert primed["requests"] == entry["result"]["distinct_urls"], entry["endpoint"]
            assert primed["errors"] == 0

    # What a reader sees: every endpoint, the ceiling, ratios and the error count.
    for endpoint in ENDPOINTS:
        assert f"\n{endpoint} " in completed.stdout, endpoint
    assert "ceiling: async def constant" in completed.stdout
    assert "req/s / ceiling req/s" in completed.stdout
    assert "request errors (any status but 200, or a broken connection): 0" in completed.stdout
