"""Forecast runs written by a test: the real run's manifest row copied with a new run id and
the columns a test wants (for example the ones the forecaster writes since issue 12)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from shared.manifests import FORECAST_RUNS, live_forecast_versions
from shared.storage import Lake

LEVELS = (*(f"p{q}" for q in range(10, 100, 10)), "p_service")
TAUS = {**{f"p{q}": q / 100 for q in range(10, 100, 10)}, "p_service": 0.95}


def gold(lake: Lake, name: str) -> pd.DataFrame:
    versions = live_forecast_versions(lake) or {}
    return lake.delta_table("gold", name, version=versions.get(name)).to_pyarrow_table().to_pandas()


def publish_run(lake: Lake, accuracy: pa.Table | None = None, **columns) -> str:
    """Commit a forecast run as the forecaster does: its tables, then its manifest row (a
    copy of the latest one with a new run id, `columns` added or replaced)."""
    run_id = uuid.uuid4().hex
    metadata = {"run_id": run_id, "kind": "forecast"}
    versions = dict(live_forecast_versions(lake) or {})
    if accuracy is not None:
        accuracy = accuracy.set_column(
            accuracy.schema.get_field_index("run_id"),
            "run_id",
            pa.array([run_id] * accuracy.num_rows, pa.string()),
        )
        commit = lake.write_delta(
            "gold", "forecast_accuracy", accuracy, mode="overwrite", metadata=metadata
        )
        versions["forecast_accuracy"] = commit.version
    runs = lake.delta_table("gold", FORECAST_RUNS).to_pyarrow_table()
    last = runs.sort_by([("finished_at", "descending")]).slice(0, 1).to_pylist()[0]
    row = {
        **last,
        "run_id": run_id,
        "finished_at": datetime.now(UTC),
        "table_versions": json.dumps(versions, sort_keys=True),
        **columns,
    }
    schema = runs.schema
    for name, value in columns.items():
        if name not in schema.names:
            kind = pa.float64() if isinstance(value, int | float) else pa.string()
            schema = schema.append(pa.field(name, kind))
    lake.write_delta(
        "gold", FORECAST_RUNS, pa.Table.from_pylist([row], schema=schema), mode="append",
        metadata=metadata,
    )  # fmt: skip
    return run_id


def with_counts(real: pd.DataFrame, seed: int) -> pa.Table:
    """The real run's accuracy rows with pooled sums and calibration counts drawn here (the
    columns the forecaster writes since issue 12), replacing any it has."""
    rng = np.random.default_rng(seed)
    frame = real.drop(
        columns=[c for c in real.columns if c.startswith(("below_", "at_or_below_", "coverage"))]
    )
    n = len(frame)
    frame["cells"] = rng.integers(0, 30, n).astype("int64")
    frame["actual_total"] = np.where(frame["cells"] > 0, rng.gamma(1.0, 20.0, n), 0.0)
    frame["quantile_loss"] = frame["actual_total"] * rng.uniform(0.3, 1.5, n)
    frame["wql"] = frame["quantile_loss"] / frame["actual_total"].where(frame["actual_total"] > 0)
    for level in LEVELS:
        tau = TAUS[level]
        below = rng.binomial(frame["cells"], max(0.0, tau - 0.1))
        frame[f"below_{level}"] = below.astype("int64")
        frame[f"at_or_below_{level}"] = (below + rng.binomial(frame["cells"] - below, 0.2)).astype(
            "int64"
        )
    return pa.Table.from_pandas(frame, preserve_index=False)
