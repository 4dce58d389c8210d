"""`python -m bench.forecast.candidates`: where the per-series models pay for their cost.

The measurement behind the README's "Which candidates run where": `forecast_panel` (3 backtest
origins, selection) with the panel models only, with the default candidates (per-series models
on smooth and erratic series), and with every per-series model on every series, scored per
demand class on held-out data:

- car parts: 2,674 monthly series, the last 12 months held out (`bench.forecast.carparts`);
- the demo: gold built from `nova demo-data`-style exports (160 items, 20 depots, 900 days),
  weekly item and item × site series, the last 12 weeks held out.

Prints one line per (data, candidate set): seconds, WQL (q 0.1..0.9, pooled) and WQL per class.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import say
from bench.forecast import carparts
from bench.forecast.cli import DATA_DIR
from services.forecaster import models
from services.forecaster.models import forecast_panel, quantile_column
from shared.demand_classes import DEMAND_CLASSES

QUANTILES = (*carparts.SCORED_QUANTILES, 0.95)
Data = tuple[pd.DataFrame, dict[str, np.ndarray], int, str, int]


def carparts_data(path: Path) -> Data:
    split = carparts.load(path)
    test = {s: split.test[i] for i, s in enumerate(split.ids)}
    return split.history, test, carparts.HORIZON, carparts.FREQ, carparts.SEASON_LENGTH


def demo_data() -> Data:
    from services.forecaster.history import bucket_history
    from shared.storage import Lake
    from tests.demo_lake import build_demo_gold

    var = Path(tempfile.mkdtemp(prefix="bench-candidates-")) / "var"
    settings = build_demo_gold(var, seed=7, items=160, depots=20, days=900)
    demand = Lake.from_settings(settings.storage).delta_table("gold", "fact_demand")
    table = demand.to_pyarrow_table()
    history = pd.concat(
        [
            bucket_history(table, bucket="week"),
            bucket_history(table, bucket="week", by_site=True, min_nonzero_periods=12),
        ],
        ignore_index=True,
    )
    cut = history["period"].max() - pd.Timedelta(weeks=12)
    train = history[history["period"] <= cut]
    held = history[history["period"] > cut].pivot(index="series_id", columns="period", values="y")
    keep = set(train["series_id"]) & set(held.index)
    train = train[train["series_id"].isin(keep)][["series_id", "period", "y"]]
    return train, {s: held.loc[s].to_numpy() for s in keep}, 12, "W-MON", 52


def score(data: Data, candidates: Sequence[str], label: str, everywhere: bool) -> None:
    history, held_out, horizon, freq, season = data
    rule = (models.LOCAL_MODEL_CLASSES, models.RICH_HISTORY_MODELS)
    if everywhere:  # every per-series model on every series, whatever its class or length
        models.LOCAL_MODEL_CLASSES = DEMAND_CLASSES
        models.RICH_HISTORY_MODELS = ()
    began = time.perf_counter()
    try:
        result = forecast_panel(
            history, horizon=horizon, freq=freq, season_length=season, quantiles=QUANTILES,
            backtest_origins=3, jobs=2, candidates=candidates,
        )  # fmt: skip
    finally:
        models.LOCAL_MODEL_CLASSES, models.RICH_HISTORY_MODELS = rule
    seconds = time.perf_counter() - began
    frame = result.forecasts.sort_values(["series_id", "step"])
    ids = list(dict.fromkeys(frame["series_id"]))
    actual = np.stack([held_out[s] for s in ids])
    levels = carparts.SCORED_QUANTILES
    forecast = np.stack(
        [frame[quantile_column(q)].to_numpy().reshape(len(ids), horizon) for q in levels], axis=-1
    )
    classes = (
        (result.accuracy.drop_duplicates("series_id").set_index("series_id")["demand_class"])
        .reindex(ids)
        .to_numpy()
    )
    wql = models.metrics.weighted_quantile_loss
    parts = []
    for c in sorted(set(classes)):
        rows = classes == c
        parts.append(f"{c} ({rows.sum()}) {wql(actual[rows], forecast[rows], levels):.4f}")
    by_class = ", ".join(parts)
    say(f"  {label:<44} {seconds:7.1f} s  WQL {wql(actual, forecast, levels):.4f}  {by_class}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.forecast.candidates")
    parser.add_argument("--data", type=Path, default=DATA_DIR / "carparts_long.csv")
    args = parser.parse_args(argv)
    per_series = tuple(m for m in models.ALL_MODELS if m not in models.PANEL_MODELS)
    sets = (
        ("panel models only", models.PANEL_MODELS, False),
        ("default candidates", models.DEFAULT_CANDIDATES, False),
        ("default + AutoETS, AutoTheta", (*models.DEFAULT_CANDIDATES, "AutoETS", "AutoTheta"),
         False),
        ("every per-series model (not AutoARIMA, Prophet) everywhere",
         tuple(m for m in (*models.PANEL_MODELS, *per_series) if m not in ("AutoARIMA", "Prophet")),
         True),
    )  # fmt: skip
    sources = [("demo, weekly, last 12 weeks held out", demo_data)]
    if args.data.exists():
        sources.insert(0, ("car parts, last 12 months held out", lambda: carparts_data(args.data)))
    else:
        say(f"car parts skipped: {args.data} not found")
    for title, load in sources:
        say(title)
        data = load()
        for label, candidates, everywhere in sets:
            score(data, candidates, label, everywhere)


if __name__ == "__main__":
    main()
