"""Smoke test of the forecast benchmark: `python -m bench.forecast --quick` runs the product
path end to end and reports every section (numbers are findings, not asserted)."""

import json
from pathlib import Path

import pytest

from services.forecaster.models import ALL_MODELS

REPO_ROOT = Path(__file__).resolve().parents[2]
CARPARTS = REPO_ROOT.parent / "shared" / "data" / "benchmarks" / "carparts_long.csv"
# CPU-bound on both cores: a couple of minutes on an idle 2-core machine, much more when other
# processes compete for the cores (nothing here measures its speed).
TIMEOUT = 1200
LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@pytest.mark.slow
@pytest.mark.timeout(1500)
@pytest.mark.skipif(not CARPARTS.exists(), reason=f"{CARPARTS} not found (shared data absent)")
def test_quick_run_reports_the_product_path_and_every_section(run_bench, tmp_path):
    out = tmp_path / "forecast.json"
    completed = run_bench(
        "forecast", "--quick", "--out", str(out), "--work-dir", str(tmp_path), timeout=TIMEOUT
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["errors"] == {}
    series = results["parameters"]["series"]
    assert results["parameters"]["quick"]

    # 1. The product path: nova forecast's own options (no candidate list of the benchmark's).
    (row,) = results["rows"]
    assert row["key"] == "product" and row["series"] == series
    assert 0 < row["wql"] < 3 and row["seconds"] > 0
    product = results["product"]
    options = product["options"]
    assert (options["bucket"], options["horizon"]) == ("month", 12)
    from services.forecaster.main import options_from
    from shared.settings import NovaSettings

    expected = options_from(NovaSettings(), bucket="month", horizon=12)
    assert options["candidates"] == list(expected.models)
    assert options["backtest_origins"] == expected.backtest_origins
    assert options["service_level"] == expected.service_level
    assert product["run"]["run_id"]  # the committed gold.forecast_runs row was read back
    assert product["items_with_policy"] > 0
    assert sum(product["item_model_mix"].values()) + product["parts_without_forecast"] == series
    # context rows: every candidate alone, labelled apart from the product row
    context = {r["key"]: r for r in results["context_rows"]}
    assert set(context) == set(ALL_MODELS)
    assert context["Zero"]["wql"] == 1.0  # the zero forecast scores exactly 1 by construction
    assert "context (not the product)" in completed.stdout
    assert "product path: nova forecast defaults" in completed.stdout

    # 2. Calibration: every served level, both shares, the status from its own rule.
    calibration = results["calibration"]
    levels = [r["level"] for r in calibration["levels"]]
    assert levels == sorted({*LEVELS, expected.service_level})
    for r in calibration["levels"]:
        assert 0 <= r["share_below"] <= r["share_at_or_below"] <= 1, r
        tol = calibration["tolerance"]
        ok = r["share_below"] - tol <= r["level"] <= r["share_at_or_below"] + tol
        assert r["status"] == ("PASS" if ok else "MISS"), r

    # 3. The sparse panel: its own product run, beside the zero forecast.
    sparse = results["sparse"]
    assert sparse["series"] > 0 and sparse["zero_share_training"] >= 0.9
    assert sparse["wql_zero"] == 1.0
    if sparse["wql"] is not None:
        assert sparse["status"] == ("PASS" if sparse["wql"] <= 1.0 else "MISS")

    # 4. The scale curve: the sizes asked for, growth relative to the first.
    points = results["scale"]["points"]
    assert [p["size"] for p in points] == results["parameters"]["scale_sizes"]
    assert len(points) >= 2 and points[0]["growth"] == 1.0
    for p in points:
        assert p["seconds"] > 0 and 0 < p["series"] <= p["size"], p

    # 5. Inventory: ours, classic and the baseline per lead time and target.
    stock = results["inventory"]
    assert stock["days"] == 365
    assert {(r["lead_time_days"], r["target_service_level"]) for r in stock["rows"]} == {
        (30, 0.90),
        (30, 0.95),
        (60, 0.90),
        (60, 0.95),
    }
    for r in stock["rows"]:
        assert 0 < r["series"] <= stock["series_with_holdout_demand"]
        for policy in ("ours", "classic", "baseline"):
            outcome = r[policy]
            assert 0 <= outcome["cycle_service_level"] <= 1, r
            assert 0 <= outcome["fill_rate"] <= 1, r
            assert outcome["average_stock_total"] >= 0, r
        assert r["target_status"] == (
            "PASS"
            if abs(r["ours"]["cycle_service_level"] - r["target_service_level"]) <= 0.02
            else "MISS"
        )
        assert r["stock_status"] in {"PASS", "MISS", "n/a"}
    assert "inventory simulation over the held-out year" in completed.stdout

    keys = {t["key"] for t in results["targets"]}
    assert {"wql", "calibration", "scale_growth"} <= keys
    assert {t["status"] for t in results["targets"]} <= {"PASS", "MISS", "n/a"}
    assert "target < 0.85" in completed.stdout
    assert not list(tmp_path.glob("bench-forecast-*"))  # the throw-away lakes are gone


def test_missing_data_file_skips_with_a_clear_message(run_bench, tmp_path):
    out = tmp_path / "forecast.json"
    completed = run_bench("forecast", "--data", str(tmp_path / "absent.csv"), "--out", str(out))
    assert completed.returncode == 0
    assert "forecast benchmark skipped" in completed.stdout
    assert "absent.csv not found" in completed.stdout
    assert not out.exists()
