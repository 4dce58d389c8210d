"""What the generated lake holds and where it is cached. Standard library only: the parent
process imports this, and must stay small (see `bench.ingest.runner`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

# Bump when the content generated for given parameters changes: cached lakes are then rebuilt.
GENERATOR_VERSION = 1
SEED = 42
DATASET = "erp_requisitions"
# The history always ends on this day, whatever its length, so that the incremental export (the
# next day, a Thursday) lands in the middle of a month that silver and gold already hold.
LAST_HISTORY_DAY = date(2026, 1, 14)
SOURCE_SHEET = ""  # CSV exports: the ingestor writes an empty sheet name


@dataclass(frozen=True)
class Sizes:
    days: int
    items: int
    sites: int
    lines: int  # request lines over the whole history

    @property
    def first_day(self) -> date:
        return LAST_HISTORY_DAY - timedelta(days=self.days - 1)

    @property
    def new_day(self) -> date:
        """The day of the incremental export."""
        return LAST_HISTORY_DAY + timedelta(days=1)

    @property
    def new_day_lines(self) -> int:
        """Lines of the incremental export: an average day of the history."""
        return max(1, round(self.lines / self.days))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cached_lake(data_dir: Path, sizes: Sizes, seed: int = SEED) -> Path:
    """Folder of the generated lake (bronze only) for these sizes."""
    return data_dir / (
        f"transform-lake-d{sizes.days}-i{sizes.items}-s{sizes.sites}-l{sizes.lines}"
        f"-seed{seed}-v{GENERATOR_VERSION}"
    )


def export_name(day: date) -> str:
    """The daily export's file name, as the ERP writes it."""
    return f"REQUISICOES_{day:%Y%m%d}.csv"
