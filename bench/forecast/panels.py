"""Panels built from the car-parts data for the sparse check and the scale curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.forecast.carparts import Split

SPARSE_ZERO_SHARE = 0.90  # share of zero months in the training history, at least
FADING_MONTHS = 12  # no demand in the last this many training months: fading out


def sparse_ids(split: Split) -> list[str]:
    """Series with demand in their training history, in at most 10% of its months."""
    train = split.train
    observed = np.isfinite(train).sum(axis=1)
    nonzero = (np.nan_to_num(train) > 0).sum(axis=1)
    share = 1.0 - nonzero / np.maximum(observed, 1)
    keep = (nonzero > 0) & (share >= SPARSE_ZERO_SHARE)
    return [s for s, k in zip(split.ids, keep, strict=True) if k]


def describe_sparse(split: Split) -> dict[str, object]:
    train = np.nan_to_num(split.train)
    nonzero = (train > 0).sum(axis=1)
    fading = int((train[:, -FADING_MONTHS:].sum(axis=1) == 0).sum())
    return {
        "series": len(split.ids),
        "training_months": int(split.train.shape[1]),
        "zero_share_training": round(
            1.0 - float(nonzero.sum()) / max(np.isfinite(split.train).sum(), 1), 4
        ),
        "series_fading": fading,
        "series_discontinued_in_holdout": int(np.isnan(split.test).any(axis=1).sum()),
        "holdout_demand": float(np.nansum(split.test)),
        "series_with_holdout_demand": int((np.nansum(split.test, axis=1) > 0).sum()),
    }


def resampled_history(path: Path, size: int, seed: int) -> pd.DataFrame:
    """`size` monthly series drawn with replacement from the car-parts panel (whole history,
    empty cells left out), each under a new id: the scale curve's panels. Deterministic."""
    frame = pd.read_csv(path, dtype={"series_id": str})
    frame = frame[frame["demand"].notna()]
    frame["month"] = pd.to_datetime(frame["month"])
    groups = {k: g for k, g in frame.groupby("series_id", sort=True)}
    names = sorted(groups)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(names), size=size)
    parts = []
    for k, pick in enumerate(picks.tolist()):
        part = groups[names[pick]]
        parts.append(
            pd.DataFrame(
                {
                    "series_id": f"S{k:06d}",
                    "period": part["month"].to_numpy(),
                    "y": part["demand"].astype(float).to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)
