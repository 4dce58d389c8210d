"""Gold tables as immutable snapshots, reloaded only when a newer Delta version exists."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pyarrow as pa

from shared.logging import get_logger
from shared.storage import Lake

log = get_logger(__name__)


@dataclass(frozen=True)
class GoldSnapshot:
    table: str
    version: int
    data: pa.Table


class GoldReader:
    """Holds the latest loaded version of each gold table; checks for a newer one at most
    every `check_seconds`, so a burst of requests costs one look at the transaction log."""

    def __init__(
        self, lake: Lake, check_seconds: float, sort_keys: dict[str, str] | None = None
    ) -> None:
        self._lake = lake
        self._check_seconds = check_seconds
        self._snapshots: dict[str, GoldSnapshot] = {}
        self._checked_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._sort_keys = sort_keys or {}

    def snapshot(self, table: str) -> GoldSnapshot | None:
        now = time.monotonic()
        with self._lock:
            current = self._snapshots.get(table)
            if current is not None and now - self._checked_at.get(table, 0.0) < self._check_seconds:
                return current
            self._checked_at[table] = now
            delta = self._lake.delta_table("gold", table)
            if delta is None:
                return None
            version = delta.version()
            if current is not None and current.version == version:
                return current
            data = delta.to_pyarrow_table()
            if table in self._sort_keys:  # paging needs a stable order, whatever the file order
                data = data.sort_by(self._sort_keys[table])
            loaded = GoldSnapshot(table, version, data)
            self._snapshots[table] = loaded
            commit = (delta.history(1) or [{}])[0]
            log.info(
                "gold_version_loaded",
                table=f"gold.{table}",
                version=version,
                rows=loaded.data.num_rows,
                correlation_id=commit.get("correlation_id"),
                build_id=commit.get("build_id"),
            )
            return loaded
