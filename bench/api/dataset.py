"""What the generated gold holds and where it is cached. Standard library only: the parent
process imports this and must stay small (generation runs in a child)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

# Bump when the content generated for given sizes changes: cached lakes are then rebuilt.
# The item and site pools come from the transform benchmark's generator, whose version is part
# of the cache key too (see `cached_lake`).
GENERATOR_VERSION = 2  # 2: forecast_accuracy with the issue-12 columns
SEED = 42
# The history ends on the same day as the transform benchmark's.
LAST_HISTORY_DAY = date(2026, 1, 14)


@dataclass(frozen=True)
class Sizes:
    days: int
    items: int
    sites: int
    rows: int  # gold.fact_demand rows (date x item x site cells with demand)

    @property
    def first_day(self) -> date:
        return LAST_HISTORY_DAY - timedelta(days=self.days - 1)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cached_lake(data_dir: Path, sizes: Sizes, transform_version: int, seed: int = SEED) -> Path:
    """Folder of the generated lake (gold only) for these sizes, under `data_dir/api/`."""
    return (
        data_dir
        / "api"
        / (
            f"lake-d{sizes.days}-i{sizes.items}-s{sizes.sites}-r{sizes.rows}-seed{seed}"
            f"-v{GENERATOR_VERSION}.{transform_version}"
        )
    )
