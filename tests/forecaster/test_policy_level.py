"""The forecast's level applied to a part's demand model (`scale_demand_model`): exact, split
between how often the part sells and how much at a time."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.forecaster.policy import LEVEL_SIZE_SHARE, demand_model, scale_demand_model

# Busy spells and quiet spells (p11 > p01), lumps of 1 to 9 units.
HISTORY = np.array(
    [0, 0, 3, 5, 2, 0, 0, 0, 0, 4, 9, 1, 0, 0, 0, 0, 0, 2, 6, 3, 0, 0, 0, 7, 2, 0, 0, 0, 0, 0,
     1, 4, 5, 0, 0, 0, 0, 0, 3, 2, 0, 0, 0, 0, 0, 6, 8, 2, 0, 0],
    dtype=float,
)  # fmt: skip


@pytest.fixture(scope="module")
def model():
    m = demand_model(HISTORY)
    assert m is not None and m.p11 > m.p01 + 0.2  # months are correlated
    return m


@pytest.mark.parametrize("ratio", [0.34, 0.5, 0.8, 1.3, 2.0, 3.0])
def test_the_level_moves_exactly_by_the_ratio(model, ratio):
    # The old scaling below 1 (p01 and p11 both times the ratio) lowered the share of months
    # with demand by more than the ratio for correlated months.
    scaled = scale_demand_model(model, ratio)
    assert scaled.mean_per_period == pytest.approx(ratio * model.mean_per_period, rel=1e-9)
    assert scaled.sizes.sum() == pytest.approx(1.0)
    assert scaled.sizes[0] == 0.0  # no lump below one unit


@pytest.mark.parametrize("ratio", [0.5, 0.8, 1.5, 2.0])
def test_the_change_is_split_between_lump_size_and_frequency(model, ratio):
    # In logs: the mean lump takes ratio^LEVEL_SIZE_SHARE (less when shrinking: lumps of one
    # unit stay one unit), the share of months with demand takes exactly the rest; how long a
    # busy spell lasts (p11) is kept.
    assert 0 < LEVEL_SIZE_SHARE < 1
    scaled = scale_demand_model(model, ratio)
    size_factor = scaled.mean_size / model.mean_size
    if ratio > 1:
        assert size_factor == pytest.approx(ratio**LEVEL_SIZE_SHARE, rel=1e-6)
    else:
        assert ratio**LEVEL_SIZE_SHARE - 1e-9 <= size_factor < 1.0
    assert scaled.occurrence == pytest.approx(model.occurrence * ratio / size_factor, rel=1e-9)
    assert (scaled.occurrence < model.occurrence) == (ratio < 1)
    assert scaled.p11 == model.p11


def test_size_share_zero_moves_only_how_often(model):
    # The level's uncertainty (a rate) moves the occurrence exactly and keeps the lumps.
    for ratio in (0.6, 1.4):
        scaled = scale_demand_model(model, ratio, size_share=0.0)
        np.testing.assert_array_equal(scaled.sizes, model.sizes)
        assert scaled.occurrence == pytest.approx(ratio * model.occurrence, rel=1e-9)
        assert scaled.p11 == model.p11


def test_what_the_occurrence_cannot_take_goes_into_the_lumps(model):
    # At 3x with every month already likely busy the share of months with demand hits 1.
    busy = demand_model(np.array([3, 4, 0, 5, 2, 6, 3, 0, 4, 5, 3, 2.0]))
    assert busy is not None
    scaled = scale_demand_model(busy, 3.0)
    assert scaled.p01 == 1.0
    assert scaled.mean_per_period == pytest.approx(3.0 * busy.mean_per_period, rel=1e-9)


def test_a_smallest_lump_of_one_unit_stays_a_sale():
    # Lumps of 1 cannot shrink: the occurrence takes the whole fall, the level is still exact.
    ones = demand_model(np.array([1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0.0]))
    assert ones is not None
    mass_above_one = ones.sizes[2:].sum()
    scaled = scale_demand_model(ones, 0.5)
    assert scaled.sizes[1] >= 1.0 - mass_above_one - 1e-12
    assert scaled.mean_per_period == pytest.approx(0.5 * ones.mean_per_period, rel=1e-9)
    assert math.isclose(scale_demand_model(ones, 1.0).mean_per_period, ones.mean_per_period)


def test_ratio_must_be_positive_and_finite(model):
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError):
            scale_demand_model(model, bad)
