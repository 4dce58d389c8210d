"""Bronze retention: old bronze objects go once silver holds their rows; the archive keeps the
original files, so a full rebuild stays possible from them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from shared.logging import get_logger
from shared.storage import Lake

log = get_logger(__name__)
_BRONZE_OBJECT = re.compile(
    r"^bronze/(?P<dataset>[^/]+)/year=(?P<y>\d{4})/month=(?P<m>\d{2})/day=(?P<d>\d{2})/"
    r"(?P<sha>[0-9a-f]{64})\.parquet$"
)


@dataclass(frozen=True)
class BronzeObject:
    path: str
    dataset: str
    day: date
    content_sha256: str


@dataclass
class PruneReport:
    removed: list[str] = field(default_factory=list)
    kept_not_in_silver: list[str] = field(default_factory=list)


def bronze_objects(paths: list[str]) -> list[BronzeObject]:
    found = []
    for path in paths:
        if m := _BRONZE_OBJECT.match(path):
            day = date(int(m["y"]), int(m["m"]), int(m["d"]))
            found.append(BronzeObject(path, m["dataset"], day, m["sha"]))
    return found


def select_prunable(
    objects: list[BronzeObject],
    now: datetime,
    retention_days: float,
    in_silver: Callable[[str], set[str]],
) -> PruneReport:
    """Pure decision: older than the retention and its content already in silver."""
    cutoff = (now - timedelta(days=retention_days)).date()
    report = PruneReport()
    silver_by_dataset: dict[str, set[str]] = {}
    for obj in objects:
        if obj.day >= cutoff:
            continue
        if obj.dataset not in silver_by_dataset:
            silver_by_dataset[obj.dataset] = in_silver(obj.dataset)
        if obj.content_sha256 in silver_by_dataset[obj.dataset]:
            report.removed.append(obj.path)
        else:
            report.kept_not_in_silver.append(obj.path)
    return report


def silver_content_hashes(lake: Lake) -> Callable[[str], set[str]]:
    def hashes(dataset: str) -> set[str]:
        dataset_ = lake.delta_dataset("silver", dataset)
        if dataset_ is None or "_content_sha256" not in dataset_.schema.names:
            return set()  # no silver for it (yet): keep every bronze object
        column = dataset_.to_table(columns=["_content_sha256"]).column("_content_sha256")
        return {h for h in column.unique().to_pylist() if h}

    return hashes


def prune_bronze(
    lake: Lake, now: datetime, retention_days: float, *, dry_run: bool = False
) -> PruneReport:
    report = select_prunable(
        bronze_objects(lake.list_files("bronze")), now, retention_days, silver_content_hashes(lake)
    )
    if not dry_run:
        for path in report.removed:
            lake.delete_file(path)
    log.info(
        "bronze_pruned",
        removed=len(report.removed),
        kept_not_in_silver=len(report.kept_not_in_silver),
        retention_days=retention_days,
        dry_run=dry_run,
    )
    return report
