"""One file's trip: hash, parse against its contract, write bronze, publish, archive.

Adapters come in through the constructor (the lake, an event publisher, a clock), so this is
testable without a broker.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

import pyarrow as pa

from services.ingestor.contracts import CONTRACTS, DatasetContract
from services.ingestor.parsing import ContractViolation
from services.ingestor.workbook import ParsedSheet, read_workbook
from shared.events import BronzeIngested, Event, IngestRejected, new_correlation_id
from shared.logging import bind_correlation_id, get_logger
from shared.settings import IngestorSettings
from shared.storage import Lake

PRODUCER = "ingestor"
log = get_logger(__name__)


class EventPublisher(Protocol):
    async def publish(self, event: Event, message_id: str) -> None: ...


@dataclass(frozen=True)
class IngestOutcome:
    status: Literal["ingested", "quarantined"]
    correlation_id: str
    content_sha256: str
    events: list[Event]
    moved_to: Path


def bronze_path(dataset: str, content_sha256: str, ingested_at: datetime) -> str:
    return (
        f"bronze/{dataset}/year={ingested_at:%Y}/month={ingested_at:%m}/day={ingested_at:%d}/"
        f"{content_sha256}.parquet"
    )


def with_lineage(
    table: pa.Table, source_name: str, sheet: str, content_sha256: str, ingested_at: datetime
) -> pa.Table:
    rows = table.num_rows
    return (
        table.append_column("_source_file", pa.array([source_name] * rows, pa.string()))
        .append_column("_source_sheet", pa.array([sheet] * rows, pa.string()))
        .append_column("_content_sha256", pa.array([content_sha256] * rows, pa.string()))
        .append_column("_ingested_at", pa.array([ingested_at] * rows, pa.timestamp("us", tz="UTC")))
    )


class IngestService:
    def __init__(
        self,
        lake: Lake,
        publisher: EventPublisher,
        settings: IngestorSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        assert settings.inbox_dir and settings.archive_dir and settings.quarantine_dir
        self._lake = lake
        self._publisher = publisher
        self._inbox = settings.inbox_dir
        self._archive = settings.archive_dir
        self._quarantine = settings.quarantine_dir
        self._clock = clock

    def _contracts_for(self, path: Path) -> list[DatasetContract]:
        """A file in `inbox/<dataset>/` is that dataset; one in `inbox/` may match any."""
        relative = path.relative_to(self._inbox)
        if len(relative.parts) > 1 and relative.parts[0] in CONTRACTS:
            return [CONTRACTS[relative.parts[0]]]
        return list(CONTRACTS.values())

    async def process(self, path: Path) -> IngestOutcome:
        correlation_id = new_correlation_id()
        with bind_correlation_id(correlation_id, file=path.name):
            started = time.perf_counter()
            # Hash and parse the same bytes: a planner re-saving the file meanwhile must not
            # stamp one version's rows with another version's hash.
            content = await asyncio.to_thread(path.read_bytes)
            content_sha256 = hashlib.sha256(content).hexdigest()
            log.info("file_received", content_sha256=content_sha256, bytes=len(content))
            contracts = self._contracts_for(path)
            try:
                sheets = await asyncio.to_thread(self._parse, path, content, contracts)
            except ContractViolation as violation:
                return await self._reject(
                    path, content_sha256, correlation_id, contracts, violation
                )
            ingested_at = self._clock()
            events: list[Event] = []
            by_dataset: dict[str, list[pa.Table]] = defaultdict(list)
            for sheet in sheets:  # a workbook may hold one dataset in several sheets
                by_dataset[sheet.dataset].append(
                    with_lineage(sheet.table, path.name, sheet.sheet, content_sha256, ingested_at)
                )
            for dataset, tables in by_dataset.items():
                target = bronze_path(dataset, content_sha256, ingested_at)
                table = pa.concat_tables(tables)
                size = await asyncio.to_thread(self._lake.write_parquet, target, table)
                log.info(
                    "bronze_written", dataset=dataset, path=target, rows=table.num_rows, bytes=size
                )
                event = BronzeIngested(
                    producer=PRODUCER,
                    correlation_id=correlation_id,
                    dataset=dataset,
                    bronze_path=target,
                    content_sha256=content_sha256,
                    source_name=path.name,
                    row_count=table.num_rows,
                )
                # Same content, same id: JetStream drops a publish retried after a crash.
                await self._publisher.publish(event, f"{content_sha256}.{dataset}")
                log.info("event_published", subject=event.subject, event_id=event.event_id)
                events.append(event)
            moved_to = self._move(path, self._archive_path(path, content_sha256, ingested_at))
            log.info(
                "file_archived",
                moved_to=str(moved_to),
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
            return IngestOutcome("ingested", correlation_id, content_sha256, events, moved_to)

    def _parse(
        self, path: Path, content: bytes, contracts: list[DatasetContract]
    ) -> list[ParsedSheet]:
        if path.suffix.lower() != ".xlsx":
            raise ContractViolation(f"unsupported file type {path.suffix or '(none)'!r}")
        try:
            sheets = read_workbook(io.BytesIO(content), contracts)
        except ContractViolation:
            raise
        except Exception as exc:
            # Only the file is read here, so any failure is the file's: quarantine it rather
            # than retry it forever.
            raise ContractViolation(f"could not read the workbook: {exc!r}") from exc
        if not sheets:
            names = ", ".join(c.name for c in contracts)
            raise ContractViolation(f"no sheet has the header of any dataset contract ({names})")
        for sheet in sheets:
            log.info(
                "file_parsed",
                dataset=sheet.dataset,
                sheet=sheet.sheet,
                header_row=sheet.header_row,
                rows=sheet.table.num_rows,
                columns=sheet.table.num_columns,
            )
        return sheets

    async def _reject(
        self,
        path: Path,
        content_sha256: str,
        correlation_id: str,
        contracts: list[DatasetContract],
        violation: ContractViolation,
    ) -> IngestOutcome:
        dataset = contracts[0].name if len(contracts) == 1 else "unknown"
        target = self._free_name(self._quarantine / path.name)
        report = {
            "file": path.name,
            "content_sha256": content_sha256,
            "dataset": dataset,
            "reason": violation.reason,
            "column": violation.column,
            "row": violation.row,
            "rejected_at": self._clock().isoformat(),
            "correlation_id": correlation_id,
        }
        # The reason goes down first: a crash between the two steps leaves the file in the inbox
        # (retried), never a quarantined file without its reason.
        target.parent.mkdir(parents=True, exist_ok=True)
        error_file = target.with_name(target.name + ".error.json")
        error_file.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        moved_to = self._move(path, target)
        log.warning("file_quarantined", reason=str(violation), moved_to=str(moved_to))
        event = IngestRejected(
            producer=PRODUCER,
            correlation_id=correlation_id,
            dataset=dataset,
            source_name=path.name,
            content_sha256=content_sha256,
            reason=str(violation),
            column=violation.column,
            row=violation.row,
        )
        try:
            await self._publisher.publish(event, f"{content_sha256}.rejected")
        except Exception:
            # The file and its report in quarantine are the record; the event only notifies.
            log.exception("reject_event_not_published", subject=event.subject)
        return IngestOutcome("quarantined", correlation_id, content_sha256, [event], moved_to)

    def _archive_path(self, path: Path, content_sha256: str, when: datetime) -> Path:
        folder = self._archive / f"{when:%Y}" / f"{when:%m}" / f"{when:%d}"
        return self._free_name(folder / f"{content_sha256}-{path.name}")

    @staticmethod
    def _free_name(target: Path) -> Path:
        """Never overwrite: a second `x.xlsx` in quarantine becomes `x.1.xlsx`."""
        candidate, counter = target, 0
        while candidate.exists():
            counter += 1
            candidate = target.with_name(f"{target.stem}.{counter}{target.suffix}")
        return candidate

    @staticmethod
    def _move(source: Path, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)  # works across mounts, unlike rename
        return target
