"""Smoke test of the forecast benchmark: `python -m bench.forecast --quick` runs end to end."""

import json
from pathlib import Path

import pytest

from services.forecaster.models import ALL_MODELS

REPO_ROOT = Path(__file__).resolve().parents[2]
CARPARTS = REPO_ROOT.parent / "shared" / "data" / "benchmarks" / "carparts_long.csv"
# CPU-bound on both cores: about a minute on an idle 2-core machine, twice that or more when
# other processes compete for the cores (nothing here measures its speed).
TIMEOUT = 600


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(not CARPARTS.exists(), reason=f"{CARPARTS} not found (shared data absent)")
def test_quick_run_scores_ours_every_candidate_and_zero(run_bench, tmp_path):
    out = tmp_path / "forecast.json"
    completed = run_bench("forecast", "--quick", "--jobs", "2", "--out", str(out), timeout=TIMEOUT)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    results = json.loads(out.read_text())

    assert results["errors"] == {}
    rows = {row["key"]: row for row in results["rows"]}
    assert set(rows) == {"ours", *ALL_MODELS}
    assert results["parameters"]["series"] == 200
    assert rows["Zero"]["wql"] == 1.0  # the zero forecast scores exactly 1 by construction
    assert rows["ours"]["wql"] < rows["Zero"]["wql"]
    for key in ("AutoARIMA", "Prophet"):  # measured on a subset, time extrapolated
        assert rows[key]["series"] == 40
        assert rows[key]["seconds_all_series_estimate"] >= rows[key]["seconds"]
    for row in results["rows"]:
        assert 0 < row["wql"] < 3, row
        assert row["seconds"] >= 0
    assert sum(results["selection"]["selected_models"].values()) == 200
    assert {t["key"]: t["status"] for t in results["targets"]}.keys() == {"wql", "seconds"}
    assert {t["status"] for t in results["targets"]} <= {"PASS", "MISS"}
    assert any(row["model"] == "chronos_bolt_base" for row in results["published"])
    assert "ours: forecast_panel (selected per series)" in completed.stdout  # the table
    assert "target < 0.85" in completed.stdout

    stock = results["inventory"]  # the inventory simulation of our forecasts
    assert 0 < stock["series"] <= 200
    assert stock["days"] == 365
    assert {(r["lead_time_days"], r["target_service_level"]) for r in stock["rows"]} == {
        (30, 0.90),
        (30, 0.95),
        (60, 0.90),
        (60, 0.95),
    }
    for row in stock["rows"]:
        for policy in ("ours", "classic"):
            outcome = row[policy]
            assert 0 <= outcome["cycle_service_level"] <= 1, row
            assert 0 <= outcome["fill_rate"] <= 1, row
            assert outcome["average_stock_per_series"] > 0, row
            assert outcome["orders"] >= 0 and outcome["stockout_days"] >= 0, row
        assert row["average_stock_ratio"] > 0, row
    assert "inventory simulation over the held-out year" in completed.stdout


def test_missing_data_file_skips_with_a_clear_message(run_bench, tmp_path):
    out = tmp_path / "forecast.json"
    completed = run_bench("forecast", "--data", str(tmp_path / "absent.csv"), "--out", str(out))
    assert completed.returncode == 0
    assert "forecast benchmark skipped" in completed.stdout
    assert "absent.csv not found" in completed.stdout
    assert not out.exists()
