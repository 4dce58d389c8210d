"""Rolling-origin backtest plan and per-series model selection on quantile loss.

Selection ranks candidates by their backtest quantile loss (Σ over origins, steps and quantiles
of 2·pinball), never by MASE: on spare-part demand the all-zero forecast has one of the best
MASEs and is useless for stocking, while the quantile loss scores exactly the numbers the
inventory policy consumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# Simplest first: ties (equal backtest loss, e.g. every model forecasting 0 for a part that
# sold nothing in the backtest windows) go to the model with the fewest moving parts, which is
# also the cheapest to explain to a planner. Unknown names sort after these.
COMPLEXITY: tuple[str, ...] = (
    "Zero",
    "EmpiricalQuantile",
    "HistoricAverage",
    "SeasonalNaive",
    "CrostonSBA",
    "CrostonOptimized",
    "TSB",
    "ADIDA",
    "IMAPA",
    "Pooled",
    "PooledBlend",
    "AutoETS",
    "AutoTheta",
    "AutoARIMA",
    "Prophet",
)

# Models a series with no backtest at all falls back to, first one among the candidates wins.
# "Pooled" is a lookup of what parts with the same recent level and demand frequency did next:
# nothing is fitted to the series itself, so it works from the first period of history.
FALLBACK_ORDER: tuple[str, ...] = ("Pooled", "EmpiricalQuantile", "Zero")


def complexity_rank(name: str) -> int:
    """Position of a model in `COMPLEXITY` (unknown models rank last)."""
    return COMPLEXITY.index(name) if name in COMPLEXITY else len(COMPLEXITY)


@dataclass(frozen=True)
class BacktestPlan:
    """Rolling origins, as periods cut off the end of each series' history.

    `cutoffs[j]` periods are hidden for origin j (newest origin first); origin j then scores the
    `horizon` periods after the cut. A series takes part in origin j only when at least
    `min_train` periods remain before the cut.
    """

    horizon: int
    cutoffs: tuple[int, ...]
    min_train: int

    def takes_part(self, lengths: NDArray[np.int64]) -> NDArray[np.bool_]:
        """(series × origin) mask: which series have enough history for which origin."""
        cut = np.asarray(self.cutoffs, dtype=np.int64)
        return (np.asarray(lengths, dtype=np.int64)[:, None] - cut[None, :]) >= self.min_train


def plan_backtest(longest: int, *, horizon: int, origins: int, min_train: int) -> BacktestPlan:
    """Origins `step` periods apart, the newest ending exactly at the end of the history.

    The step is the horizon (non-overlapping windows) when the longest series can afford it;
    otherwise it shrinks so the oldest origin still keeps `min_train` periods of training, down
    to one period (overlapping windows: on 51 monthly periods with a 12-month horizon, three
    disjoint years would leave 3 months to train on). Origins that still do not fit are dropped.
    """
    if origins <= 0 or longest - horizon < min_train:
        return BacktestPlan(horizon, (), min_train)
    step = horizon
    if origins > 1 and longest - horizon - (origins - 1) * step < min_train:
        step = max(1, (longest - horizon - min_train) // (origins - 1))
    cutoffs = tuple(
        horizon + j * step for j in range(origins) if longest - horizon - j * step >= min_train
    )
    return BacktestPlan(horizon, cutoffs, min_train)


def select_models(
    losses: NDArray[np.float64],
    demand: NDArray[np.float64],
    classes: Sequence[str],
    names: Sequence[str],
    *,
    prior_weight: float,
) -> NDArray[np.int64]:
    """Index into `names` of the model chosen for each series.

    `losses[i, m]` is series i's total backtest quantile loss under model m (NaN: model m was not
    run on series i, e.g. Prophet on an intermittent part, or a fit failed); `demand[i]` the
    series' Σ|y| over the same backtest cells.

    A series' own backtest is one to three short windows of mostly zeros, so on its own it
    picks winners by luck. Each model's score therefore adds a prior from the series' demand
    class: score = own loss + prior_weight · demand · class WQL, where class WQL is the model's
    weighted quantile loss over every series of the class. prior_weight = 0 is pure per-series
    selection; a large value selects one model per class. Models missing for some series of a
    class are compared on the series they do cover. Ties (within 1e-9 relative) go to the
    simpler model (`COMPLEXITY`). Series without any backtest loss get -1 (the caller falls
    back, see `fallback_model`).
    """
    n_series = losses.shape[0]
    class_array = np.asarray(classes, dtype=object)
    prior = np.zeros_like(losses)
    if prior_weight > 0:
        for demand_class in np.unique(class_array):
            rows = class_array == demand_class
            class_losses = losses[rows]
            available = ~np.isnan(class_losses)
            class_demand = np.where(available, demand[rows, None], 0.0).sum(axis=0)
            class_total = np.where(available, class_losses, 0.0).sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                class_wql = np.where(class_demand > 0, class_total / class_demand, 0.0)
            prior[rows] = prior_weight * demand[rows, None] * class_wql[None, :]
    scores = losses + prior
    ranks = np.array([complexity_rank(name) for name in names])
    chosen = np.full(n_series, -1, dtype=np.int64)
    for i in range(n_series):
        row = scores[i]
        available = ~np.isnan(row)
        if not available.any():
            continue
        best = row[available].min()
        tolerance = 1e-9 * max(1.0, abs(best))
        tied = np.flatnonzero(available & (row <= best + tolerance))
        chosen[i] = tied[np.argmin(ranks[tied])]
    return chosen


def fallback_model(names: Sequence[str]) -> str:
    """The model for a series too short for any backtest origin.

    The first of `FALLBACK_ORDER` among the candidates; failing that, the simplest candidate.
    """
    for name in FALLBACK_ORDER:
        if name in names:
            return name
    return min(names, key=complexity_rank)
