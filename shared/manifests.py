"""Which versions of the gold tables readers should use.

A gold build and a forecast run each commit several Delta tables one after the other, then
append one manifest row naming the versions they left behind. Readers pin those versions, so
they never mix two builds, and a build or run that dies half-way is invisible to them.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from shared.storage import Lake

GOLD_BUILDS = "builds"
FORECAST_RUNS = "forecast_runs"


def commit_info(lake: Lake, name: str, version: int) -> dict[str, Any]:
    """The commit metadata of one version of a gold table, read from its log file.

    Not `DeltaTable.history`: under concurrent commits it reads the log as it is now and can
    label a newer commit with the version the table was opened at.
    """
    text = lake.read_bytes(f"gold/{name}/_delta_log/{version:020d}.json").decode()
    for line in text.splitlines():
        action = json.loads(line)
        if "commitInfo" in action:
            return dict(action["commitInfo"])
    return {}


def live_gold_versions(lake: Lake) -> tuple[str, dict[str, int]] | None:
    """Build id and table versions of the latest completed gold build, or None before one."""
    builds = lake.delta_table("gold", GOLD_BUILDS)
    if builds is None:
        return None
    # The last commit names the last build; clocks may tie, commit order cannot.
    build_id = commit_info(lake, GOLD_BUILDS, builds.version()).get("build_id")
    if build_id is None:
        return None
    rows = builds.to_pyarrow_table(
        columns=["table_versions"], filters=[("build_id", "=", build_id)]
    )
    if rows.num_rows == 0:
        return None
    versions = json.loads(rows["table_versions"][0].as_py())
    return build_id, {k: int(v) for k, v in versions.items()}


def live_forecast_versions(lake: Lake) -> dict[str, int] | None:
    """Versions of the forecast tables that readers should use: the latest manifest's."""
    manifest = lake.delta_table("gold", FORECAST_RUNS)
    if manifest is None:
        return None
    runs = manifest.to_pyarrow_table(columns=["finished_at", "table_versions"])
    if runs.num_rows == 0:
        return None
    latest = runs.take([pc.index(runs["finished_at"], pc.max(runs["finished_at"])).as_py()])
    return {k: int(v) for k, v in json.loads(latest["table_versions"][0].as_py()).items()}


def read_live(lake: Lake, table: str) -> pa.Table | None:
    """A forecast table as of the latest completed run."""
    versions = live_forecast_versions(lake)
    if versions is None or table not in versions:
        return None
    delta = lake.delta_table("gold", table, version=versions[table])
    return None if delta is None else delta.to_pyarrow_table()
