"""Bronze retention: only old objects whose content silver already holds are removed."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

from services.ingestor.retention import (
    BronzeObject,
    bronze_objects,
    prune_bronze,
    select_prunable,
)
from services.ingestor.service import IngestService
from services.transformer.builds import apply_bronze_event
from shared.settings import NovaSettings
from shared.storage import Lake

SHA_A, SHA_B, SHA_C = "a" * 64, "b" * 64, "c" * 64


def test_bronze_objects_are_recognised_by_their_path_only():
    paths = [
        f"bronze/selic/year=2025/month=01/day=31/{SHA_A}.parquet",
        "bronze/selic/year=2025/month=01/day=31/notes.txt",
        f"bronze/selic/{SHA_B}.parquet",
        f"bronze/selic/year=2025/month=13x/day=01/{SHA_C}.parquet",
    ]
    assert bronze_objects(paths) == [BronzeObject(paths[0], "selic", date(2025, 1, 31), SHA_A)]


def test_only_objects_past_the_retention_and_in_silver_are_selected():
    now = datetime(2025, 6, 1, tzinfo=UTC)
    old, recent = date(2025, 2, 1), date(2025, 5, 30)
    objects = [
        BronzeObject("old-in-silver", "ds", old, SHA_A),
        BronzeObject("old-not-in-silver", "ds", old, SHA_B),
        BronzeObject("recent-in-silver", "ds", recent, SHA_A),
        BronzeObject("old-other-dataset", "other", old, SHA_A),
    ]
    asked: list[str] = []

    def in_silver(dataset: str) -> set[str]:
        asked.append(dataset)
        return {SHA_A} if dataset == "ds" else set()

    report = select_prunable(objects, now, 90, in_silver)
    assert report.removed == ["old-in-silver"]
    assert report.kept_not_in_silver == ["old-not-in-silver", "old-other-dataset"]
    assert asked == ["ds", "other"], "silver is read once per dataset"


class _Publisher:
    async def publish(self, event, message_id):
        self.last = event


class _Ledger:
    def __init__(self):
        self.entries = {}

    async def get(self, content_sha256):
        return self.entries.get(content_sha256)

    async def put(self, entry):
        self.entries[entry.content_sha256] = entry


def test_prune_removes_old_bronze_that_silver_holds_and_keeps_the_rest(tmp_path, real_workbook):
    settings = NovaSettings(var_dir=tmp_path / "var")
    inbox = settings.ingestor.inbox_dir
    assert inbox is not None
    inbox.mkdir(parents=True)
    lake = Lake.from_settings(settings.storage)
    long_ago = datetime(2024, 1, 10, tzinfo=UTC)
    service = IngestService(
        lake, _Publisher(), _Ledger(), settings.ingestor, clock=lambda: long_ago
    )
    (inbox / "w.xlsx").write_bytes(real_workbook.read_bytes())
    outcome = asyncio.run(service.process(inbox / "w.xlsx"))
    requisitions = next(e for e in outcome.events if e.dataset == "erp_requisitions")
    apply_bronze_event(lake, requisitions)  # silver now holds the requisitions only

    dry = prune_bronze(lake, long_ago + timedelta(days=91), 90, dry_run=True)
    assert dry.removed == [requisitions.bronze_path]
    assert len(lake.list_files("bronze")) == 3, "a dry run removes nothing"

    too_early = prune_bronze(lake, long_ago + timedelta(days=89), 90)
    assert too_early.removed == [] and too_early.kept_not_in_silver == []

    report = prune_bronze(lake, long_ago + timedelta(days=91), 90)
    assert report.removed == [requisitions.bronze_path]
    remaining = lake.list_files("bronze")
    assert requisitions.bronze_path not in remaining
    assert sorted(remaining) == sorted(report.kept_not_in_silver)
    assert {p.split("/")[1] for p in remaining} == {"erp_cost_summary", "erp_sites"}
    assert lake.delta_table("silver", "erp_requisitions").count() == 4207, "silver untouched"
