"""Smoke test of the ingest benchmark: `python -m bench.ingest --quick` runs end to end."""

import pytest

PATHS = {
    "ours_csv",
    "ours_csv_parse_write",
    "pyarrow_csv",
    "pandas_csv",
    "ours_xlsx",
    "openpyxl_xlsx",
    "pandas_xlsx",
    "ours_csv_quarter",
}


@pytest.mark.slow
def test_quick_run_measures_every_path_and_ours_writes_every_row(quick_run):
    completed, results = quick_run("ingest")

    assert results["errors"] == {}
    assert set(results["paths"]) == PATHS
    for key, path in results["paths"].items():
        assert path["rows"] > 0, key
        assert path["rows_per_s"] > 0, key
        assert path["peak_rss_mb"] > 0, key
    paths = results["paths"]
    csv_rows = results["inputs"]["csv"]["rows"]
    assert paths["pyarrow_csv"]["rows"] == csv_rows
    assert paths["ours_csv"]["rows"] == paths["pyarrow_csv"]["rows"]
    assert paths["ours_csv"]["output_rows"] == paths["ours_csv"]["rows"]
    assert paths["ours_xlsx"]["rows"] == results["inputs"]["xlsx"]["rows"]
    assert paths["ours_csv_quarter"]["rows"] == csv_rows // 4
    assert {r["status"] for r in results["ratios"]} <= {"PASS", "MISS", "info"}
    assert "ours CSV: process()" in completed.stdout  # the table
    assert "target >= 0.8x" in completed.stdout  # the ratios
