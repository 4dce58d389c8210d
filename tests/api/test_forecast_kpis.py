"""Issue 12 on the API: the accuracy KPI (pooled WQL, calibration per served level), the
forecast summary (quantiles of the total by Monte-Carlo, not sums of quantiles) and the
forecast run's operator figures on /status.

Expected values are computed here independently (pandas, scipy, a separate sampler), not
taken from the API's own helpers.
"""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from scipy import stats

from services.api import queries, totals
from services.api.app import create_app
from shared.manifests import FORECAST_RUNS
from shared.settings import ApiSettings, NovaSettings
from shared.storage import Lake
from tests.api.runs import LEVELS, TAUS, gold, publish_run, with_counts

DECILES = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])


# --- accuracy: pooled WQL and calibration ----------------------------------------------------


def accuracy_rows() -> pa.Table:
    """Three selected series and one candidate that was not selected (its huge numbers must
    not count). Per-series WQL 0.1 and 0.3 average 0.2; pooled, (1 + 9) / (10 + 30) = 0.25."""
    base = {
        "series_id": ["A", "A", "B", "C"],
        "item_code": ["A", "A", "B", "C"],
        "model": ["TSB", "Zero", "TSB", "Zero"],
        "demand_class": ["smooth", "smooth", "smooth", "lumpy"],
        "selected": [True, False, True, True],
        "mase": [1.0, 100.0, 3.0, float("nan")],
        "wql": [0.1, 100.0, 0.3, float("nan")],
        "wape": [0.5, 100.0, 0.7, float("nan")],
        "bias": [0.0, 100.0, 1.0, float("nan")],
        "quantile_loss": [1.0, 500.0, 9.0, 2.0],
        "actual_total": [10.0, 10.0, 30.0, 0.0],
        "cells": [4, 4, 6, 8],
    }
    counts: dict[str, list[int | None]] = {}
    for k, level in enumerate(LEVELS):
        # A: cells split around the level; B: mostly below; C: all zeros (actual 0 <= q).
        counts[f"below_{level}"] = [min(4, k // 3), 0, min(6, k), 0]
        counts[f"at_or_below_{level}"] = [min(4, 1 + k // 2), 0, min(6, k + 1), 8]
    return pa.table({**base, **counts})


def test_wql_is_pooled_over_the_group_not_a_mean_of_series():
    rows = accuracy_rows()
    groups = {g["group"]: g for g in queries.accuracy(rows, None, "demand_class", 0.95).to_pylist()}
    assert groups["smooth"]["series"] == 2
    assert groups["smooth"]["wql"] == pytest.approx(0.25)
    assert groups["smooth"]["mase"] == pytest.approx(2.0)  # still a mean over series
    assert groups["lumpy"]["wql"] is None  # no demand in its backtest: WQL undefined
    overall = queries.accuracy(rows, None, None, 0.95).to_pylist()
    assert len(overall) == 1 and overall[0]["series"] == 3
    assert overall[0]["wql"] == pytest.approx((1 + 9 + 2) / 40)


def test_calibration_shares_pool_the_counts_and_flag_each_level():
    rows = accuracy_rows()
    frame = rows.to_pandas()
    chosen = frame[frame["selected"]]
    groups = {g["group"]: g for g in queries.accuracy(rows, None, "demand_class", 0.95).to_pylist()}
    for name, part in chosen.groupby("demand_class"):
        cells = part["cells"].sum()
        assert groups[name]["cells"] == cells
        for level in LEVELS:
            below = part[f"below_{level}"].sum() / cells
            at = part[f"at_or_below_{level}"].sum() / cells
            group = groups[name]
            assert group[f"share_below_{level}"] == pytest.approx(below)
            assert group[f"share_at_or_below_{level}"] == pytest.approx(at)
            tau = TAUS[level]
            assert group[f"calibrated_{level}"] == (below - 0.03 <= tau <= at + 0.03)
    # by hand: smooth p10 has 0/10 below and 2/10 at or below: 0.1 lies between
    assert groups["smooth"]["calibrated_p10"] is True
    # lumpy: every actual is 0 and every quantile >= 0: share below 0, at or below 1
    assert all(groups["lumpy"][f"calibrated_{level}"] for level in LEVELS)


def test_calibration_tolerance_is_three_points_either_side():
    assert queries.is_calibrated(0.5, 0.53, 0.6)
    assert not queries.is_calibrated(0.5, 0.531, 0.6)
    assert queries.is_calibrated(0.5, 0.3, 0.47)
    assert not queries.is_calibrated(0.5, 0.3, 0.469)


def test_json_groups_list_calibration_per_served_level_with_its_tau():
    table = queries.accuracy(accuracy_rows(), None, "demand_class", 0.9)
    groups = {g["group"]: g for g in queries.accuracy_records(table, 0.9)}
    levels = [c["level"] for c in groups["smooth"]["calibration"]]
    assert levels == list(LEVELS)
    service = groups["smooth"]["calibration"][-1]
    assert service["tau"] == 0.9  # the run's service level, not a fixed 0.95
    assert set(groups["smooth"]) >= {"group", "series", "cells", "mase", "wql", "calibration"}
    assert "coverage_80" not in groups["smooth"]


# --- forecast summary: quantiles of the total ------------------------------------------------


def sampled_total(quantiles: np.ndarray, levels: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """An independent sampler of the same model: continuous u, np.interp between the stored
    quantiles (0 at u = 0 below p10 when the first segment would go negative), exponential
    tail through the two highest quantiles."""
    rng = np.random.default_rng(seed)
    total = np.zeros(samples)
    for q in np.maximum.accumulate(np.maximum(quantiles, 0), axis=1):
        start = max(0.0, q[0] - (q[1] - q[0]) * levels[0] / (levels[1] - levels[0]))
        u = rng.random(samples)
        x = np.interp(u, np.r_[0.0, levels], np.r_[start, q])
        scale = (q[-1] - q[-2]) / np.log((1 - levels[-2]) / (1 - levels[-1]))
        top = u > levels[-1]
        x[top] = q[-1] + scale * np.log((1 - levels[-1]) / (1 - u[top]))
        total += x
    return total


def test_total_of_many_gamma_items_matches_the_exact_sum():
    """Gamma(k_i, θ) items: their sum is Gamma(Σk_i, θ) exactly (an independent answer)."""
    rng = np.random.default_rng(5)
    shapes = rng.uniform(1.0, 4.0, 2000)
    theta = 3.0
    quantiles = np.stack([stats.gamma.ppf(DECILES, k, scale=theta) for k in shapes])
    got = totals.total_quantiles(quantiles, DECILES, np.array([0.1, 0.5, 0.9]))
    exact = stats.gamma(shapes.sum(), scale=theta)
    mean, sd = exact.mean(), exact.std()
    assert got[0] <= got[1] <= got[2]
    # p50 of the total lies near the sum of the means (the total is nearly symmetric)
    assert got[1] == pytest.approx(mean, rel=0.015)
    for value, want in zip(got, exact.ppf([0.1, 0.5, 0.9]), strict=True):
        # Monte-Carlo error ~0.05 sd; the chords between deciles lie above the convex part
        # of the gamma quantile function: the interpolated mean is ~0.9 % high here
        assert abs(value - want) <= 0.2 * sd + 0.012 * mean, (value, want, sd)
    # and the old answer, the sum of the items' p90, is far above the total's p90
    assert quantiles[:, 8].sum() > exact.ppf(0.9) + 10 * sd


def test_total_of_sparse_items_is_right_skewed_and_matches_the_exact_distribution():
    """Parts with demand in 10 % of periods (then exponential sizes): every item's p10..p90
    is 0, so the old summary's "p90" (a sum of p90s) was 0, below the mean. The exact total:
    N ~ Binomial(n, 0.1) nonzero items, their sum | N ~ Gamma(N, β). (With less than 10 %
    the deciles cannot tell where between u = 0.9 and the p_service level the mass starts.)"""
    n, zero, beta = 500, 0.9, 10.0
    level_q = np.where(zero >= DECILES, 0.0, beta * np.log((1 - zero) / (1 - DECILES)))
    quantiles = np.tile(level_q, (n, 1))
    mean = n * (1 - zero) * beta
    assert quantiles[:, 8].sum() == 0 < mean
    got = totals.total_quantiles(quantiles, DECILES, np.array([0.1, 0.5, 0.9]))
    assert got[0] <= got[1] <= got[2]
    assert got[2] >= mean  # right-skewed: the p90 of the total lies above its mean

    counts = np.arange(n + 1)
    weights = stats.binom.pmf(counts, n, 1 - zero)

    def cdf(t: float) -> float:
        return float(weights[0] + (weights[1:] * stats.gamma.cdf(t, counts[1:], scale=beta)).sum())

    sd = np.sqrt(n * ((1 - zero) * 2 * beta**2 - ((1 - zero) * beta) ** 2))
    for p, value in zip((0.1, 0.5, 0.9), got, strict=True):
        # the exact quantile by bisection on the exact CDF
        lo, hi = 0.0, mean * 4
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
        # the linear step from p90 = 0 to p95 over-states each item's mean by ~2 %
        assert abs(value - lo) <= 0.2 * sd + 0.03 * mean, (p, value, lo)


def test_total_quantiles_agree_with_an_independent_sampler():
    rng = np.random.default_rng(8)
    shapes = rng.uniform(0.2, 2.0, 60)
    scales = rng.uniform(1, 50, 60)
    quantiles = np.stack(
        [stats.gamma.ppf(DECILES, k, scale=s) for k, s in zip(shapes, scales, strict=True)]
    )
    got = totals.total_quantiles(quantiles, DECILES, np.array([0.1, 0.5, 0.9]))
    reference = np.quantile(sampled_total(quantiles, DECILES, 40_000, 1), [0.1, 0.5, 0.9])
    sd = sampled_total(quantiles, DECILES, 40_000, 2).std()
    for value, want in zip(got, reference, strict=True):
        assert abs(value - want) <= 0.15 * sd, (value, want, sd)


def test_cell_means_keep_the_mean_of_the_interpolated_distribution():
    rng = np.random.default_rng(2)
    quantiles = np.sort(rng.gamma(0.7, 5.0, (20, 10)), axis=1)
    reference = sampled_total(quantiles[:1], DECILES, 400_000, 3).mean()
    cells = totals.cell_means(quantiles, DECILES)
    assert cells[0].mean() == pytest.approx(reference, rel=0.01)
    assert (np.diff(cells, axis=1) >= -1e-12).all()  # a quantile function: non-decreasing


def summary_rows(periods: int, items: int, seed: int) -> pa.Table:
    """fact_forecast rows: item-level series (and one site series that must not count)."""
    rng = np.random.default_rng(seed)
    shapes = rng.uniform(0.5, 3.0, items)
    rows = []
    for p in range(periods):
        for i, k in enumerate(shapes):
            q = stats.gamma.ppf(DECILES, k, scale=2.0)
            row = {f"p{int(level * 100)}": v for level, v in zip(DECILES[:9], q[:9], strict=True)}
            rows.append(
                {
                    "series_id": f"I{i:04d}",
                    "item_code": f"I{i:04d}",
                    "site_code": None,
                    "period": date(2026, 1 + p, 1),
                    **row,
                    "p_service": q[9],
                    "service_level": 0.95,
                    "mean": 2.0 * k,
                }
            )
    rows.append({**rows[0], "series_id": "I0000|S1", "site_code": "S1", "mean": 1e6})
    return pa.Table.from_pylist(rows)


def test_summary_is_deterministic_and_a_date_range_is_a_slice_of_the_whole():
    rows = summary_rows(periods=3, items=40, seed=1)
    whole = queries.forecast_summary(rows).to_pylist()
    assert whole == queries.forecast_summary(rows).to_pylist()
    shuffled = rows.take(np.random.default_rng(0).permutation(rows.num_rows))
    assert queries.forecast_summary(shuffled).to_pylist() == whole  # row order does not matter
    assert [p["series"] for p in whole] == [40, 40, 40]  # the site series is not counted
    for point in whole:
        assert point["p10"] <= point["p50"] <= point["p90"]
        assert point["mean"] == pytest.approx(
            sum(
                r["mean"]
                for r in rows.to_pylist()
                if r["period"] == point["period"] and r["site_code"] is None
            )
        )


@pytest.mark.parametrize("series", [2_000, 10_000])
def test_summary_of_a_large_catalogue_stays_fast(series):
    """12 periods of `series` item-level series (bench/api's shape has 2,000 items)."""
    import time

    rng = np.random.default_rng(3)
    n = series * 12
    quantiles = np.sort(rng.gamma(0.5, 3.0, (n, 10)), axis=1)
    table = pa.table(
        {
            "series_id": np.tile([f"S{i:06d}" for i in range(series)], 12),
            "item_code": np.tile([f"S{i:06d}" for i in range(series)], 12),
            "site_code": pa.nulls(n, pa.string()),
            "period": pa.array(np.repeat(np.arange(12) * 7 + 20_000, series).astype(np.int32)).cast(
                pa.date32()
            ),
            **{f"p{10 * (k + 1)}": quantiles[:, k] for k in range(9)},
            "p_service": quantiles[:, 9],
            "service_level": np.full(n, 0.95),
            "mean": quantiles.mean(axis=1),
        }
    )
    started = time.perf_counter()
    summary = queries.forecast_summary(table)
    seconds = time.perf_counter() - started
    assert summary.num_rows == 12
    assert seconds < 0.6 * series / 1000, seconds  # measured ~0.04 s per 1,000 series x 12


# --- endpoints over a real forecast run and over runs written here ---------------------------


@pytest.fixture
def lake(gold_var):
    return Lake.from_settings(NovaSettings(var_dir=gold_var).storage)


def client_of(lake: Lake) -> TestClient:
    return TestClient(create_app(ApiSettings(version_check_seconds=3600), lake))


def expected_groups(frame: pd.DataFrame, column: str | None) -> dict:
    """Pooled WQL and calibration per group, computed with pandas."""
    chosen = frame[frame["selected"]].copy()
    chosen["_group"] = chosen[column] if column else "all"
    result = {}
    for name, part in chosen.groupby("_group", dropna=False):
        cells = part["cells"].fillna(0).sum()
        actual = part["actual_total"].fillna(0).sum()
        result[name] = {
            "series": len(part),
            # no demand (or no backtest) in the group: WQL undefined
            "wql": part["quantile_loss"].fillna(0).sum() / actual if actual > 0 else None,
            "cells": cells,
            **{
                level: (
                    part[f"below_{level}"].fillna(0).sum() / cells,
                    part[f"at_or_below_{level}"].fillna(0).sum() / cells,
                )
                for level in (LEVELS if cells > 0 else ())
            },
        }
    return result


def check_accuracy_answer(body: dict, frame: pd.DataFrame, column: str | None, tau: float) -> None:
    expected = expected_groups(frame, column)
    groups = [body["overall"]] if column is None else body["groups"]
    assert sum(g["series"] for g in groups) == frame["selected"].sum()
    for group in groups:
        want = expected["all" if column is None else group["group"]]
        assert group["series"] == want["series"]
        assert group["cells"] == want["cells"]
        assert group["wql"] == (None if want["wql"] is None else pytest.approx(want["wql"]))
        # a group without backtest cells (series too short for any origin): nothing to show
        assert [c["level"] for c in group["calibration"]] == (list(LEVELS) if want["cells"] else [])
        for c in group["calibration"]:
            below, at = want[c["level"]]
            assert c["tau"] == (tau if c["level"] == "p_service" else TAUS[c["level"]])
            assert c["share_below"] == pytest.approx(below)
            assert c["share_at_or_below"] == pytest.approx(at)
            assert c["calibrated"] == (below - 0.03 <= c["tau"] <= at + 0.03)


def test_accuracy_endpoint_pools_a_run_with_counts(lake):
    real = gold(lake, "forecast_accuracy")
    publish_run(lake, with_counts(real, seed=4))
    frame = gold(lake, "forecast_accuracy")
    families = gold(lake, "dim_item")[["item_code", "item_family"]]
    frame = frame.merge(families, on="item_code", how="left")
    service = json.loads(gold(lake, FORECAST_RUNS)["parameters"].iloc[-1])["service_level"]
    with client_of(lake) as client:
        for by, column in (("demand_class", "demand_class"), ("model", "model"),
                           ("family", "item_family")):  # fmt: skip
            body = client.get("/api/v1/kpis/forecast-accuracy", params={"by": by}).json()
            assert body["note"] is None and body["service_level"] == service
            assert body["tolerance"] == 0.03
            check_accuracy_answer(body, frame, column, service)
        check_accuracy_answer(body, frame, None, service)
        csv = client.get("/api/v1/kpis/forecast-accuracy", params={"format": "csv"})
        assert csv.status_code == 200 and "share_below_p50" in csv.text.splitlines()[0]


def test_accuracy_endpoint_says_n_a_for_a_run_without_counts(lake):
    """An old run's rows (no sums, no counts): WQL and calibration n/a, with a note."""
    real = gold(lake, "forecast_accuracy")
    old = real[[c for c in ("run_id", "series_id", "item_code", "model", "demand_class", "mase",
                            "wql", "bias", "wape", "selected") if c in real.columns]]  # fmt: skip
    old = old.assign(coverage_80=0.8)
    # Where the real run wrote the new columns, the table keeps them (schema merge), null in
    # these rows: the same as a table without them.
    publish_run(lake, pa.Table.from_pandas(old, preserve_index=False))
    with client_of(lake) as client:
        body = client.get("/api/v1/kpis/forecast-accuracy").json()
    assert body["groups"]
    assert "n/a" in body["note"]
    for group in [body["overall"], *body["groups"]]:
        assert group["wql"] is None and group["calibration"] == [] and group["cells"] is None


def test_accuracy_endpoint_over_the_real_run(client_real, lake_real):
    """The forecaster's own run records the sums and counts: pooled WQL and calibration per
    group and over all series, as computed here from its gold.forecast_accuracy."""
    frame = gold(lake_real, "forecast_accuracy")
    assert {"quantile_loss", "actual_total", "cells", "below_p_service"} <= set(frame.columns)
    families = gold(lake_real, "dim_item")[["item_code", "item_family"]]
    frame = frame.merge(families, on="item_code", how="left")
    service = json.loads(gold(lake_real, FORECAST_RUNS)["parameters"].iloc[-1])["service_level"]
    for by, column in (("demand_class", "demand_class"), ("model", "model"),
                       ("family", "item_family")):  # fmt: skip
        body = client_real.get("/api/v1/kpis/forecast-accuracy", params={"by": by}).json()
        assert body["note"] is None and body["service_level"] == service
        check_accuracy_answer(body, frame, column, service)
    check_accuracy_answer(body, frame, None, service)


@pytest.fixture(scope="module")
def lake_real(demo_gold):
    return Lake.from_settings(NovaSettings(var_dir=demo_gold).storage)


@pytest.fixture(scope="module")
def client_real(lake_real):
    with client_of(lake_real) as client:
        yield client


def test_summary_endpoint_over_the_real_run(client_real, lake_real):
    forecasts = gold(lake_real, "fact_forecast")
    overall = forecasts[forecasts["site_code"].isna()]
    body = client_real.get("/api/v1/forecasts/summary").json()
    assert body["samples"] == totals.SAMPLES and "independent" in body["method"]
    by_period = overall.groupby("period")
    assert len(body["periods"]) == by_period.ngroups
    for point in body["periods"]:
        rows = by_period.get_group(date.fromisoformat(point["period"]))
        assert point["mean"] == pytest.approx(rows["mean"].sum())
        assert point["series"] == len(rows)
        assert point["p10"] <= point["p50"] <= point["p90"]
        # never above the sum of the p90s, never below the sum of the p10s
        assert rows["p10"].sum() - 1e-9 <= point["p10"] and point["p90"] <= rows["p90"].sum() + 1e-9
    # a date range is a slice of the same numbers
    middle = body["periods"][1:-1]
    if middle:
        part = client_real.get(
            "/api/v1/forecasts/summary",
            params={"from": middle[0]["period"], "to": middle[-1]["period"]},
        ).json()
        assert part["periods"] == middle
    described = client_real.get("/openapi.json").json()["paths"]["/api/v1/forecasts/summary"]
    assert "independently" in described["get"]["description"]


def test_status_shows_the_runs_operator_figures(lake):
    figures = {
        "gold_build_id": "abc123",
        "stage_seconds": json.dumps({"read": 1.5, "backtest": 20.25, "select": 0.5,
                                     "final_fit": 3.0, "policy": 2.0, "commit": 0.75}),
        "series_by_class": json.dumps({"smooth": 3, "lumpy": 12, "intermittent": 9}),
        "failures_by_model": json.dumps({"AutoETS": 2}),
    }  # fmt: skip
    run_id = publish_run(lake, **figures)
    with client_of(lake) as client:
        run = client.get("/api/v1/status").json()["last_forecast_run"]
    assert run["run_id"] == run_id
    assert run["gold_build_id"] == "abc123"
    assert run["stage_seconds"] == json.loads(figures["stage_seconds"])
    assert run["series_by_class"] == {"smooth": 3, "lumpy": 12, "intermittent": 9}
    assert run["failures_by_model"] == {"AutoETS": 2}
    assert run["selected_models"]


def test_status_of_the_real_run(client_real, lake_real):
    """The forecaster records its operator figures: /status shows them as written."""
    runs = gold(lake_real, FORECAST_RUNS)
    body = client_real.get("/api/v1/status").json()
    run = body["last_forecast_run"]
    latest = runs.sort_values("finished_at").iloc[-1]
    assert run["run_id"] == latest["run_id"]
    assert run["selected_models"] == json.loads(latest["selected_models"])
    for column in ("stage_seconds", "series_by_class", "failures_by_model"):
        assert run[column] == json.loads(latest[column])
    assert set(run["stage_seconds"]) >= {"read", "backtest", "select", "final_fit", "policy"}
    assert sum(run["series_by_class"].values()) == run["series"]
    assert run["gold_build_id"] == latest["gold_build_id"] == body["build_id"]


def test_status_of_a_run_older_than_the_figures(lake):
    """A manifest row without the figures (a run written before issue 12): null, not 500."""
    publish_run(lake, stage_seconds=None, series_by_class=None, failures_by_model=None,
                gold_build_id=None)  # fmt: skip
    with client_of(lake) as client:
        run = client.get("/api/v1/status").json()["last_forecast_run"]
    assert run["selected_models"]
    for column in ("stage_seconds", "series_by_class", "failures_by_model", "gold_build_id"):
        assert run[column] is None
