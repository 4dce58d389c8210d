"""Smoke test of the transform benchmark: `python -m bench.transform --quick` runs end to end."""

import pytest

PATHS = {"full", "incremental", "duckdb_direct"}


@pytest.mark.slow
def test_quick_run_measures_every_path_and_the_incremental_build_commits_fact_demand(quick_run):
    completed, results = quick_run("transform")

    assert results["errors"] == {}
    assert set(results["paths"]) == PATHS
    for key, path in results["paths"].items():
        assert path["seconds_best"] > 0, key
        assert path["rows"] > 0, key
        assert path["peak_rss_mb"] > 0, key
    paths = results["paths"]
    bronze = results["inputs"]["bronze"]
    assert bronze["lines"] == results["parameters"]["lines"]
    assert bronze["objects"] == results["parameters"]["days"]  # one object per daily export
    assert paths["duckdb_direct"]["rows"] == bronze["lines"]  # no dedup in the baseline
    # The same SQL gives the same demand with or without the orchestration.
    assert paths["full"]["fact_demand_rows"] == paths["duckdb_direct"]["fact_demand_rows"] > 0

    incremental = paths["incremental"]
    assert incremental["rows"] == results["parameters"]["new_day_lines"]
    assert incremental["tables"]["gold.fact_demand"]["version"] == 1  # a commit after the rebuild
    assert incremental["fact_demand_rows"] > paths["full"]["fact_demand_rows"]
    assert incremental["tables"]["silver.erp_requisitions"]["version"] == 1
    assert paths["full"]["tables"]["gold.fact_demand"]["version"] == 0

    targets = {r["key"]: r["status"] for r in results["ratios"] if r["target"] is not None}
    assert set(targets) == {"incremental_vs_full", "incremental_seconds", "full_vs_duckdb"}
    assert set(targets.values()) <= {"PASS", "MISS"}
    assert "ours: rebuild_all()" in completed.stdout  # the table
    assert "target < 5.0 %" in completed.stdout  # the ratios
