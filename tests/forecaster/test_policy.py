"""Inventory policy: lead time, Monte-Carlo reorder point, classic formulas, alerts, simulation.

Expected values are computed by hand in the comments; Monte-Carlo results are compared with
analytic ones within a few standard errors of the sample quantile.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from services.forecaster.policy import (
    LeadTime,
    classic_safety_stock,
    forecast_moments,
    lead_time_distribution,
    reorder_point_classic,
    simulate_policy,
    stock_alert,
    z_for_service_level,
)

# 99 levels 0.01 … 0.99: dense enough that linear interpolation reproduces a smooth law.
LEVELS = [round(0.01 * i, 2) for i in range(1, 100)]


def normal_row(mean: float, std: float) -> np.ndarray:
    law = NormalDist(mean, std)
    return np.array([law.inv_cdf(p) for p in LEVELS])


def fixed_lead_time(days: float) -> LeadTime:
    return lead_time_distribution([], fallback_days=days)


def constant_forecast(value: float, horizon: int = 1) -> np.ndarray:
    return np.full((horizon, 3), value)


# --- lead time ----------------------------------------------------------------------------


def test_lead_time_from_item_samples_drops_negative_and_missing():
    lead = lead_time_distribution([4, 6, 8, -1, float("nan")], fallback_days=30)
    assert lead.source == "item"
    assert lead.n_samples == 3
    assert lead.samples_days == (4.0, 6.0, 8.0)
    assert lead.mean_days == pytest.approx(6.0)
    # Sample std (ddof=1, as stddev_samp): √((4 + 0 + 4)/2) = 2.
    assert lead.std_days == pytest.approx(2.0)
    assert lead.p50_days == pytest.approx(6.0)
    # quantile_cont: position 0.9·(3−1) = 1.8 → 6 + 0.8·(8 − 6) = 7.6.
    assert lead.p90_days == pytest.approx(7.6)


def test_lead_time_falls_back_when_too_few_valid_samples():
    lead = lead_time_distribution([-3, 5, -1], fallback_days=20, min_samples=3)
    assert lead.source == "fallback"
    assert lead.n_samples == 0
    assert lead.samples_days == ()
    assert (lead.mean_days, lead.std_days, lead.p50_days, lead.p90_days) == (20, 0, 20, 20)


def test_lead_time_fallback_with_std_reports_gamma_quantiles():
    lead = lead_time_distribution([], fallback_days=10, fallback_std_days=3)
    reference = np.random.default_rng(0).gamma((10 / 3) ** 2, 0.9, 400_000)
    assert lead.std_days == 3
    assert lead.p50_days == pytest.approx(np.quantile(reference, 0.5), abs=0.05)
    assert lead.p90_days == pytest.approx(np.quantile(reference, 0.9), abs=0.05)


def test_lead_time_single_sample_when_allowed():
    lead = lead_time_distribution([12], fallback_days=30, min_samples=1)
    assert (lead.source, lead.mean_days, lead.std_days, lead.p90_days) == ("item", 12, 0, 12)


@pytest.mark.parametrize(
    "kwargs",
    [{"fallback_days": -1}, {"fallback_days": math.nan}, {"fallback_days": 5, "min_samples": 0}],
)
def test_lead_time_rejects_bad_fallback(kwargs):
    with pytest.raises(ValueError):
        lead_time_distribution([1, 2, 3], **kwargs)


# --- classic formulas ---------------------------------------------------------------------


def test_classic_safety_stock_fixed_lead_time():
    # SS = z·σ_D·√L = 1.645 · 2 · 3 = 9.87.
    assert classic_safety_stock(1.645, 2, 9) == pytest.approx(9.87)
    assert classic_safety_stock(1.645, 2, 9, sigma_lt_days=0) == pytest.approx(9.87)


def test_classic_safety_stock_with_lead_time_variance():
    # SS = z·√(L·σ_D² + D²·σ_L²) = 1.645·√(9·4 + 25·4) = 1.645·√136 ≈ 19.184.
    expected = 1.645 * math.sqrt(9 * 4 + 25 * 4)
    assert expected == pytest.approx(19.184, abs=1e-3)
    assert classic_safety_stock(1.645, 2, 9, sigma_lt_days=2, mean_daily=5) == pytest.approx(
        expected
    )


def test_classic_safety_stock_needs_mean_daily_with_lead_time_variance():
    with pytest.raises(ValueError, match="mean_daily"):
        classic_safety_stock(1.645, 2, 9, sigma_lt_days=2)


def test_classic_reorder_point_and_z():
    # s = D·L + SS = 5·9 + 9.87.
    assert reorder_point_classic(5, 9, 9.87) == pytest.approx(54.87)
    assert z_for_service_level(0.95) == pytest.approx(1.6449, abs=1e-4)
    assert z_for_service_level(0.5) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        z_for_service_level(1.0)


# --- Monte-Carlo lead-time demand -----------------------------------------------------------


@pytest.mark.parametrize(
    ("forecast", "levels"),
    [
        (np.ones((2, 3)), [0.1, 0.5]),  # columns ≠ levels
        (np.ones((2, 2)), [0.5, 0.1]),  # levels not increasing
        (np.ones((2, 2)), [0.0, 0.5]),  # level outside (0, 1)
        (np.array([[1.0, math.inf]]), [0.1, 0.9]),  # not finite
    ],
)
def test_rejects_malformed_forecasts(forecast, levels):
    with pytest.raises(ValueError):
        forecast_moments(forecast, levels)


def test_forecast_moments_of_a_normal_row():
    means, variances = forecast_moments(normal_row(10, 2)[None, :], LEVELS)
    assert means[0] == pytest.approx(10, abs=0.01)
    assert math.sqrt(variances[0]) == pytest.approx(2, abs=0.1)


# --- policy per item ----------------------------------------------------------------------


# --- alerts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on_hand", "cover", "level"),
    [
        (-2, 0.0, "critical"),  # negative balance
        (0, 0.0, "critical"),  # empty shelf
        (3.5, 3.5, "critical"),  # cover 3.5 < L/2 = 4
        (4, 4.0, "attention"),  # cover = L/2 is not critical; 4 ≤ s
        (10, 10.0, "attention"),  # on_hand = s
        (10.5, 10.5, "monitor"),  # just above s
        (15, 15.0, "monitor"),  # on_hand = 1.5·s
        (15.5, 15.5, "ok"),  # above 1.5·s
    ],
)
def test_stock_alert_boundaries(on_hand, cover, level):
    # s = 10, D = 1/day, L = 8 days.
    assert stock_alert(on_hand, 10, 1, 8) == (pytest.approx(cover), level)


def test_stock_alert_without_demand():
    assert stock_alert(5, 10, 0, 8) == (math.inf, "attention")
    assert stock_alert(20, 10, 0, 8) == (math.inf, "ok")
    assert stock_alert(0, 10, 0, 8) == (0.0, "critical")


# --- simulation ---------------------------------------------------------------------------


def test_simulation_with_enough_stock_never_stocks_out():
    # 2 a day, s = 4, S = 8, L = 2: orders of 4 on days 1, 3, 5, 7 arrive as the shelf
    # empties. End-of-day stock 6, 4, 2, 4, 2, 4, 2, 4 → mean 3.5.
    result = simulate_policy(np.full(8, 2.0), 4, 8, 2, 8)
    assert result.fill_rate == 1.0
    assert result.cycle_service_level == 1.0
    assert result.achieved_service_level == 1.0
    assert result.stockout_days == 0
    assert result.orders == 4
    assert result.average_stock == pytest.approx(3.5)


def test_simulation_with_known_stockouts_backorders():
    # s = 3, S = 6, L = 2, start with 6; demand 1,1,1,5,1,1,1,1.
    # d2: IP 3 → order 3 (arrives end d4). d3: 3 served, 2 short (net −2), IP 1 → order 5
    # (end d5). d4: 1 short, receive 3 → 0. d5: 1 short, receive 5 → 4. d6: IP 3 → order 3.
    # Shelf 5,4,3,0,0,4,3,2 → 21/8. Cycles: d0–d4 (stockout), d5 (stockout), d6–d7 (ok).
    result = simulate_policy(np.array([1, 1, 1, 5, 1, 1, 1, 1.0]), 3, 6, 2, 6)
    assert result.stockout_days == 3
    assert result.unmet_demand == pytest.approx(4)
    assert result.fill_rate == pytest.approx(8 / 12)
    assert result.orders == 3
    assert result.cycles == 3
    assert result.cycle_service_level == pytest.approx(1 / 3)
    assert result.average_stock == pytest.approx(21 / 8)


def test_simulation_with_known_stockouts_lost_sales():
    # Same as above, shortages lost: d3 loses 2, IP 3 → order 3 (end d5); d4 loses 1,
    # receive 3; d5 receive 3 → 5; d7: IP 3 → order. Shelf 5,4,3,0,3,5,4,3 → 27/8.
    # Cycles: d0–d4 (stockout), d5 (ok), d6–d7 (ok).
    result = simulate_policy(np.array([1, 1, 1, 5, 1, 1, 1, 1.0]), 3, 6, 2, 6, lost_sales=True)
    assert result.stockout_days == 2
    assert result.fill_rate == pytest.approx(9 / 12)
    assert result.orders == 3
    assert result.cycle_service_level == pytest.approx(2 / 3)
    assert result.average_stock == pytest.approx(27 / 8)


def test_simulation_with_a_lead_time_per_order():
    # 2 a day, s = 2, S = 6, lead times 1, 3, 1 for the 1st, 2nd, 3rd order.
    # d1: order 4 (end d2); d3: order 4 (end d6, after the horizon); d5: 2 short, order 4.
    # Shelf 4,2,4,2,0,0 → 2.0. Cycles: d0–d2 (ok), d3–d5 (stockout).
    result = simulate_policy(np.full(6, 2.0), 2, 6, [1, 3, 1], 6)
    assert result.orders == 3
    assert result.stockout_days == 1
    assert result.fill_rate == pytest.approx(10 / 12)
    assert result.cycle_service_level == pytest.approx(0.5)
    assert result.average_stock == pytest.approx(2.0)
    with pytest.raises(ValueError, match="too few"):
        simulate_policy(np.full(6, 2.0), 2, 6, [1, 3], 6)


def test_simulation_accepts_a_whole_float_lead_time():
    # 2.0 is one lead time for every order, not a one-order sequence.
    by_float = simulate_policy(np.full(8, 2.0), 4, 8, 2.0, 8)
    assert by_float == simulate_policy(np.full(8, 2.0), 4, 8, 2, 8)
    assert by_float == simulate_policy(np.full(8, 2.0), 4, 8, np.int64(2), 8)
    with pytest.raises(ValueError, match="whole days"):
        simulate_policy(np.full(8, 2.0), 4, 8, 2.5, 8)


def test_simulation_without_orders_or_stockouts_has_no_cycle():
    # Nothing was ever on order and nothing ran short: no cycle, P1 = 1.0 by convention.
    result = simulate_policy(np.array([1.0, 0.0, 2.0]), 0, 0, 5, 10)
    assert (result.orders, result.cycles, result.failed_cycles) == (0, 0, 0)
    assert result.cycle_service_level == 1.0
    assert result.average_stock == pytest.approx((9 + 9 + 7) / 3)


def test_simulation_days_after_the_last_receipt_with_nothing_on_order_are_no_cycle():
    # s = 1, S = 4, L = 2, start 4; demand 3, 2, then nothing. d0: net 1, IP 1 → order 3 (end
    # d2). d1: 1 short (net −1, IP 2). d2: receive → 2: the one cycle failed. d3–d7: nothing on
    # order, no demand: not a cycle (it used to count as a free success: P1 0.5).
    result = simulate_policy(np.array([3, 2, 0, 0, 0, 0, 0, 0.0]), 1, 4, 2, 4)
    assert (result.orders, result.cycles, result.failed_cycles) == (1, 1, 1)
    assert result.cycle_service_level == 0.0


def test_simulation_days_after_the_last_receipt_with_an_order_outstanding_are_a_cycle():
    # As above with 1 more on d6: IP 1 → order 3 arriving after the horizon. d3–d7 are an open
    # cycle (an order is outstanding) without a stockout.
    result = simulate_policy(np.array([3, 2, 0, 0, 0, 0, 1, 0.0]), 1, 4, 2, 4)
    assert (result.orders, result.cycles, result.failed_cycles) == (2, 2, 1)
    assert result.cycle_service_level == 0.5


def test_simulation_a_stockout_with_nothing_on_order_is_a_failed_cycle():
    # Lost sales, s = S = 0 (the part is not stocked), start 2: d2 loses 1 unit and orders
    # nothing. No receipt, nothing on order — but a stockout is never a free success.
    result = simulate_policy(np.array([1, 0, 3, 0.0]), 0, 0, 5, 2, lost_sales=True)
    assert (result.orders, result.stockout_days) == (0, 1)
    assert (result.cycles, result.failed_cycles) == (1, 1)
    assert result.cycle_service_level == 0.0


def test_simulation_counts_pool_over_parts():
    # cycles and failed_cycles are the raw counts behind P1 in every replay above.
    for args, kwargs in [
        ((np.full(8, 2.0), 4, 8, 2, 8), {}),
        ((np.array([1, 1, 1, 5, 1, 1, 1, 1.0]), 3, 6, 2, 6), {}),
        ((np.array([1, 1, 1, 5, 1, 1, 1, 1.0]), 3, 6, 2, 6), {"lost_sales": True}),
        ((np.full(6, 2.0), 2, 6, [1, 3, 1], 6), {}),
    ]:
        result = simulate_policy(*args, **kwargs)
        assert result.cycles > 0
        assert result.cycle_service_level == pytest.approx(1 - result.failed_cycles / result.cycles)


def test_simulation_rejects_inconsistent_policy():
    with pytest.raises(ValueError, match="below reorder_point"):
        simulate_policy(np.ones(5), 10, 5, 2, 10)
    with pytest.raises(ValueError):
        simulate_policy(np.array([1.0, -1.0]), 1, 5, 2, 10)
