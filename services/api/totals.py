"""Quantiles of a total of forecasts, by Monte-Carlo over each series' distribution.

A quantile of a sum is not the sum of the quantiles: adding every item's p90 gives a number
far above the total's p90 when items are independent (their highs rarely coincide), and
adding the p90s of right-skewed demand can even give less than the total's mean.
`total_quantiles` draws each series from the distribution its stored quantiles describe and
adds the draws.

Each series' distribution, as its quantile function Q(u) (the inverse CDF):
- between the stored levels (p10..p90 and the service-level quantile): linear in u;
- below the lowest level: the first segment continued linearly down to u = 0, never below 0;
- above the highest level u_K: an exponential tail through the two highest stored quantiles,
  Q(u) = q_K + s·ln((1 − u_K) / (1 − u)), s = (q_K − q_{K−1}) / ln((1 − u_{K−1}) / (1 − u_K)),
  so large draws are possible but have a finite mean (s = 0: no mass above q_K).
Draws: u is split into `CELLS` cells of equal probability and a draw picks a cell uniformly
and takes the exact mean of Q over it, so the draws have exactly the mean of Q (numpy: a
table of CELLS values per series, then one random byte and one lookup per draw).

Series are drawn independently of each other. Demand of parts sharing a driver (a project,
a fleet, a season) is positively correlated; then the total's real spread is wider than this.

The generator is seeded with a constant and the period, and series are taken in the order of
their ids: the same gold gives the same numbers, in any date range.
"""

from __future__ import annotations

import numpy as np

SAMPLES = 1000  # draws of the total per period: a quantile's Monte-Carlo error ~0.05 sd
CELLS = 256  # equal-probability cells of each series' distribution (one byte per draw)
SEED = 12
CHUNK = 4096  # series per block of draws (memory: CHUNK x SAMPLES)


def knots(quantiles: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The piecewise-linear part of each series' quantile function and its tail scale.

    `quantiles` (n, K): each series' stored quantiles at `levels` (K >= 2, strictly
    increasing in (0, 1)); they are made non-negative and non-decreasing here. Returns `u`
    (K + 1,): 0 and the levels; `x` (n, K + 1): Q at those u; `tail` (n,): the tail's scale s.
    """
    levels = np.asarray(levels, np.float64)
    q = np.maximum.accumulate(np.maximum(np.asarray(quantiles, np.float64), 0.0), axis=1)
    below = q[:, 0] - (q[:, 1] - q[:, 0]) * levels[0] / (levels[1] - levels[0])
    x = np.hstack([np.maximum(below, 0.0)[:, None], q])
    u = np.concatenate([[0.0], levels])
    tail = (q[:, -1] - q[:, -2]) / np.log((1 - levels[-2]) / (1 - levels[-1]))
    return u, x, tail


def integral(u: np.ndarray, x: np.ndarray, tail: np.ndarray, at: np.ndarray) -> np.ndarray:
    """∫_0^a Q(v) dv for each series (rows of `x`) and each a in `at` (in [0, 1]): (n, len(at))."""
    top = u[-1]
    slope = np.diff(x, axis=1) / np.diff(u)
    # Area under the linear part up to each knot.
    area = np.hstack(
        [np.zeros((len(x), 1)), np.cumsum((x[:, :-1] + x[:, 1:]) / 2 * np.diff(u), axis=1)]
    )
    inside = np.minimum(at, top)
    j = np.minimum(np.searchsorted(u, inside, side="right") - 1, len(u) - 2)
    d = inside - u[j]
    result = area[:, j] + x[:, j] * d + slope[:, j] * d**2 / 2
    # The tail: ∫_top^a q_K + s·ln(w_K / w) dv = q_K (a − top) + s (w_K − w − w ln(w_K / w)),
    # w = 1 − v (w ln(w_K / w) → 0 as w → 0).
    w_top = 1 - top
    w = np.maximum(1 - at, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_term = np.where(w > 0, w * np.log(w_top / np.where(w > 0, w, 1.0)), 0.0)
    beyond = np.where(at > top, w_top - w - log_term, 0.0)
    result += x[:, -1:] * np.maximum(at - top, 0.0) + tail[:, None] * beyond
    return result


def cell_means(quantiles: np.ndarray, levels: np.ndarray, cells: int = CELLS) -> np.ndarray:
    """(n, cells): the mean of each series' Q over u in [k / cells, (k + 1) / cells)."""
    u, x, tail = knots(quantiles, levels)
    edges = np.linspace(0.0, 1.0, cells + 1)
    return np.diff(integral(u, x, tail, edges), axis=1) * cells


def total_samples(
    quantiles: np.ndarray,
    levels: np.ndarray,
    *,
    samples: int = SAMPLES,
    seed: int | list[int] = SEED,
    cells: int = CELLS,
    chunk: int = CHUNK,
) -> np.ndarray:
    """`samples` draws of the total of independent series (rows of `quantiles`)."""
    assert cells <= 256, "a draw is one byte"
    quantiles = np.asarray(quantiles, np.float64)
    total = np.zeros(samples)
    rng = np.random.default_rng(seed)
    # A series with every quantile 0 adds nothing and has no tail: it is not drawn.
    live = np.flatnonzero(quantiles.max(axis=1, initial=0.0) > 0)
    for start in range(0, len(live), chunk):
        table = cell_means(quantiles[live[start : start + chunk]], levels, cells)
        picks = rng.integers(0, cells, (len(table), samples), dtype=np.uint8)
        offsets = (np.arange(len(table), dtype=np.int32) * cells)[:, None]
        total += table.ravel()[picks + offsets].sum(axis=0)
    return total


def total_quantiles(
    quantiles: np.ndarray,
    levels: np.ndarray,
    wanted: np.ndarray,
    *,
    samples: int = SAMPLES,
    seed: int | list[int] = SEED,
) -> np.ndarray:
    """Quantiles `wanted` of the total of independent series (see the module's docstring)."""
    draws = total_samples(quantiles, levels, samples=samples, seed=seed)
    return np.quantile(draws, wanted)
