"""The same data and the same seed give the same forecasts and reorder points.

Gold does not promise a row order: two builds of the same demo data (same seed) wrote
`fact_lead_time` and `fact_demand` with the same rows in another order (other files, listed in
another order). Reorder points depended on it: the Monte-Carlo bootstraps an item's lead-time
samples by position, so the same seed on the same samples listed in another order drew other
lead times (7.91 against 7.38 for one demo item), and float sums (lead-time spread, on-hand,
bucketed demand) differed in their last bits. These tests permute gold's rows and expect
bit-identical output.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from services.forecaster.history import bucket_history
from services.forecaster.runner import ForecastOptions, run_forecast
from shared.manifests import read_live
from shared.settings import NovaSettings
from shared.storage import Lake

LEVELS = (0.1, 0.5, 0.9, 0.95)


def _permuted(table: pa.Table, seed: int) -> pa.Table:
    return table.take(np.random.default_rng(seed).permutation(table.num_rows))


def test_bucketed_demand_does_not_depend_on_row_order():
    # Decimal quantities (metres, litres): a float sum in another order differs in its last bits.
    rng = np.random.default_rng(3)
    rows = 400
    demand = pa.table(
        {
            "demand_date": pa.array(
                np.datetime64("2025-01-06") + rng.integers(0, 21, rows).astype("timedelta64[D]"),
                pa.date32(),
            ),
            "item_code": pa.array(rng.choice(["A", "B"], rows)),
            "site_code": pa.array(rng.choice(["S1", "S2"], rows)),
            "quantity": pa.array(rng.choice([0.1, 0.2, 0.3, 0.7, 1.1, 2.35], rows)),
        }
    )
    first = bucket_history(demand, bucket="week", by_site=True)
    for seed in range(5):
        again = bucket_history(_permuted(demand, seed), bucket="week", by_site=True)
        pd.testing.assert_frame_equal(first, again, check_exact=True)


@pytest.mark.slow
def test_a_rebuild_of_the_same_gold_gives_the_same_forecasts_and_policy(demo_var, tmp_path):
    """Two runs, the second on gold whose rows were rewritten in another order."""
    copies = []
    for name, permute in (("as_built", False), ("reordered", True)):
        var = tmp_path / name
        shutil.copytree(demo_var, var)
        lake = Lake.from_settings(NovaSettings(var_dir=var).storage)
        if permute:
            for table in ("fact_lead_time", "fact_demand", "fact_stock"):
                rows = lake.delta_table("gold", table).to_pyarrow_table()
                lake.write_delta("gold", table, _permuted(rows, 1), mode="overwrite")
        run_forecast(lake, ForecastOptions(horizon=8, jobs=1, backtest_origins=2))
        copies.append(lake)

    def live(lake: Lake, table: str, keys: list[str]) -> pd.DataFrame:
        frame = read_live(lake, table).to_pandas().drop(columns="run_id")
        return frame.sort_values(keys, ignore_index=True)

    for table, keys in (
        ("fact_forecast", ["series_id", "step"]),
        ("forecast_accuracy", ["series_id", "model"]),
        ("inventory_policy", ["item_code"]),
    ):
        first, second = (live(lake, table, keys) for lake in copies)
        assert len(first) > 0
        pd.testing.assert_frame_equal(first, second, check_exact=True, obj=f"gold.{table}")
