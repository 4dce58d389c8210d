"""One file's trip: check, hash, consult the ledger, parse against its contract, write bronze,
publish, archive — or quarantine with the reason.

Adapters come in through the constructor (the lake, an event publisher, the ledger, a clock),
so this is testable without a broker. The order of the steps is what makes a crash at any point
harmless; see `process`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

import pyarrow as pa

from services.ingestor import csv_reader
from services.ingestor.contracts import CONTRACTS, DatasetContract
from services.ingestor.files import (
    NotARegularFileError,
    entry_kind,
    move_entry,
    open_for_writing,
    open_regular,
    read_regular,
    sha256_regular,
)
from services.ingestor.json_reader import read_json
from services.ingestor.ledger import Ledger, LedgerEntry
from services.ingestor.metrics import IngestMetrics
from services.ingestor.names import bounded_name, name_record
from services.ingestor.parsing import ContractViolation, HeaderMatch
from services.ingestor.workbook import read_workbook
from shared.events import BronzeIngested, Event, IngestRejected, new_correlation_id
from shared.logging import bind_correlation_id, get_logger
from shared.quarantine import REPORT_SUFFIX, printable
from shared.settings import IngestorSettings
from shared.storage import Lake

PRODUCER = "ingestor"
FORMATS_BY_SUFFIX = {".xlsx": "xlsx", ".csv": "csv", ".txt": "csv", ".json": "json"}
EVENT_ID_NAMESPACE = uuid.UUID("6f1d7c2e-1f43-4a3b-9d7e-5b0c7a0e2a11")
log = get_logger(__name__)

LINEAGE_FIELDS = (
    pa.field("_source_file", pa.string()),
    pa.field("_source_sheet", pa.string()),
    pa.field("_content_sha256", pa.string()),
    pa.field("_ingested_at", pa.timestamp("us", tz="UTC")),
)


class EventPublisher(Protocol):
    async def publish(self, event: Event, message_id: str) -> None: ...


class FileChangedError(RuntimeError):
    """The file changed while it was read; it is left in the inbox to be read again."""


class FileBusyError(FileChangedError):
    """A process still holds the file open for writing; it is read once that one closes it."""


# Bytes the archive and quarantine add to a name: `<sha256>-` before it, `.<n>` for a repeated
# name, `.error.json` beside a quarantined one.
ARCHIVE_NAME_RESERVE = 65 + 6
QUARANTINE_NAME_RESERVE = len(REPORT_SUFFIX) + 6


@dataclass(frozen=True)
class IngestOutcome:
    status: Literal["ingested", "duplicate", "quarantined"]
    correlation_id: str
    content_sha256: str
    events: list[Event]
    moved_to: Path


@dataclass(frozen=True)
class _Part:
    """One dataset's rows from one file, as lazily produced batches."""

    header: HeaderMatch
    sheets: tuple[str, ...]
    schema: pa.Schema
    batches: Iterable[tuple[str, pa.RecordBatch]]  # (sheet name or "", batch)

    @property
    def dataset(self) -> str:
        return self.header.contract.name


def bronze_path(dataset: str, content_sha256: str, ingested_at: datetime) -> str:
    return (
        f"bronze/{dataset}/year={ingested_at:%Y}/month={ingested_at:%m}/day={ingested_at:%d}/"
        f"{content_sha256}.parquet"
    )


def unsafe_name_reason(name: str) -> str | None:
    """Names an ERP or a planner should never produce, and that could escape a folder later.

    `a..b.csv` is an ordinary name: only a `..` that is a whole path component climbs.
    """
    if "/" in name or "\\" in name:
        return "the file name contains a path separator"
    if name in (".", ".."):
        return "the file name is '..'"
    if any(ord(c) < 32 for c in name):
        return "the file name contains control characters"
    return None


def sha256_file(path: Path) -> str:
    """The content hash of a regular file; a symlink or a FIFO is refused, never followed."""
    return sha256_regular(path)


def _lineage_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([*schema, *LINEAGE_FIELDS])


def _with_lineage(
    batch: pa.RecordBatch, source: str, sheet: str, sha: str, at: datetime
) -> pa.RecordBatch:
    rows = batch.num_rows
    columns = [
        *batch.columns,
        pa.repeat(pa.scalar(source, pa.string()), rows),
        pa.repeat(pa.scalar(sheet, pa.string()), rows),
        pa.repeat(pa.scalar(sha, pa.string()), rows),
        pa.repeat(pa.scalar(at, pa.timestamp("us", tz="UTC")), rows),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=_lineage_schema(batch.schema))


class IngestService:
    def __init__(
        self,
        lake: Lake,
        publisher: EventPublisher,
        ledger: Ledger,
        settings: IngestorSettings,
        metrics: IngestMetrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        assert settings.inbox_dir and settings.archive_dir and settings.quarantine_dir
        self._lake = lake
        self._publisher = publisher
        self._ledger = ledger
        self._settings = settings
        self._inbox = settings.inbox_dir
        self._archive = settings.archive_dir
        self._quarantine = settings.quarantine_dir
        self.metrics = metrics or IngestMetrics()
        self._clock = clock
        self._open_for_writing: set[Path] = set()

    def _contracts_for(self, path: Path) -> list[DatasetContract]:
        """A file in `inbox/<dataset>/` is that dataset; one in `inbox/` may match any."""
        relative = path.relative_to(self._inbox)
        if len(relative.parts) > 1 and relative.parts[0] in CONTRACTS:
            return [CONTRACTS[relative.parts[0]]]
        return list(CONTRACTS.values())

    async def process(self, path: Path) -> IngestOutcome:
        """Ingest one complete file. A crash at any step is safe to retry from the start:

        1. the ledger entry `started` fixes the ingestion time, hence the bronze paths;
        2. bronze objects are written whole at those paths (a retry overwrites, never adds);
        3. events are published with `Nats-Msg-Id` = content hash (JetStream drops a repeat);
        4. the ledger entry `published` turns any later copy of this content into a no-op;
        5. the file moves to the archive.

        Only a regular file is read, and only once no process holds it open for writing; it
        must still be the same content after it was read, or nothing of it is kept.
        """
        correlation_id = new_correlation_id()
        with bind_correlation_id(correlation_id, file=printable(path.name)):
            started = time.perf_counter()
            contracts = self._contracts_for(path)
            before = os.lstat(path)  # the entry itself: a link is not followed
            if not stat.S_ISREG(before.st_mode):
                return await self._reject_entry(path, before, correlation_id, contracts, started)
            size = before.st_size
            log.info(
                "file_complete",
                bytes=size,
                inbox_path=printable(path.relative_to(self._inbox).as_posix()),
            )
            if reason := self._refusal(path, size):
                violation = ContractViolation(reason)
                return await self._reject(path, "", correlation_id, contracts, violation, started)
            self._check_not_being_written(path)
            content_sha256 = await asyncio.to_thread(sha256_file, path)
            entry = await self._ledger.get(content_sha256)
            if entry is not None and entry.status == "published":
                await asyncio.to_thread(self._check_unchanged, path, before, content_sha256, [])
                return self._duplicate(path, entry, correlation_id, started)
            if entry is None:
                entry = LedgerEntry(
                    content_sha256=content_sha256,
                    status="started",
                    ingested_at=self._clock(),
                    correlation_id=correlation_id,
                    source_name=printable(path.name),
                )
                await self._ledger.put(entry)
            else:
                # Events carry the first attempt's correlation id, so one file is one story.
                log.info("file_resumed", first_attempt_correlation_id=entry.correlation_id)
                correlation_id = entry.correlation_id
            ingested_at = entry.ingested_at
            try:
                parts = await asyncio.to_thread(self._read_parts, path, contracts)
                written = await asyncio.to_thread(
                    self._write_bronze, path, parts, content_sha256, ingested_at
                )
            except ContractViolation as violation:
                # A file caught mid-write breaks its contract only by being incomplete.
                await asyncio.to_thread(self._check_unchanged, path, before, content_sha256, [])
                return await self._reject(
                    path, content_sha256, correlation_id, contracts, violation, started
                )
            await asyncio.to_thread(self._check_unchanged, path, before, content_sha256, written)
            events = await self._publish(path, written, content_sha256, correlation_id)
            await self._ledger.put(
                entry.model_copy(
                    update={
                        "status": "published",
                        "bronze_paths": {e.dataset: e.bronze_path for e in events},
                        "event_ids": {e.dataset: e.event_id for e in events},
                    }
                )
            )
            moved_to = self._move(path, self._archive_path(path, content_sha256, ingested_at))
            self._check_archived(moved_to, before)
            duration = time.perf_counter() - started
            log.info(
                "file_archived",
                moved_to=printable(str(moved_to)),
                duration_ms=round(duration * 1000, 1),
            )
            fmt = FORMATS_BY_SUFFIX.get(path.suffix.lower(), "other")
            self.metrics.bytes.labels(format=fmt).inc(size)
            self.metrics.duration.labels("ingested").observe(duration)
            for event in events:
                self.metrics.files.labels(event.dataset, "ingested").inc()
                self.metrics.rows.labels(event.dataset).inc(event.row_count)
            return IngestOutcome("ingested", correlation_id, content_sha256, events, moved_to)

    def _check_not_being_written(self, path: Path) -> None:
        """Refuse to read a file a process holds open for writing (a slow export, a log).

        In polling mode the inbox is a share whose writers are on other machines, and a lease
        on a network file system says nothing true (NFS answers 'busy' without a delegation):
        there the stable-time rule alone decides.
        """
        if self._settings.polling:
            return
        if not open_for_writing(path):
            self._open_for_writing.discard(path)
            return
        if path not in self._open_for_writing:  # once per wait, not at every look
            self._open_for_writing.add(path)
            log.info("file_open_for_writing", detail="read once the writer closes it")
            self.metrics.deferred.labels("open_for_writing").inc()
        raise FileBusyError(f"{printable(path.name)} is still open for writing")

    def _check_archived(self, moved_to: Path, before: os.stat_result) -> None:
        """A writer that opened the file in the instant between the last check and the move
        writes into the archive: what it wrote is not in bronze. Rare, but never silent."""
        after = os.lstat(moved_to)
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            log.error(
                "file_written_after_archiving",
                archived=printable(str(moved_to)),
                bytes_read=before.st_size,
                bytes_now=after.st_size,
            )
            self.metrics.abandoned.labels("written_after_archiving").inc()

    def _check_unchanged(
        self,
        path: Path,
        before: os.stat_result,
        content_sha256: str,
        written: list[tuple[_Part, str, int]],
    ) -> None:
        """The file is still the one that was read: same entry, size, mtime and content, and no
        writer came back. If not, what was written of it goes (nothing was published yet) and
        it is read again later."""
        try:
            after = os.lstat(path)
            same = (
                stat.S_ISREG(after.st_mode)
                and (after.st_dev, after.st_ino, after.st_size, after.st_mtime_ns)
                == (before.st_dev, before.st_ino, before.st_size, before.st_mtime_ns)
                and not (not self._settings.polling and open_for_writing(path))
                and sha256_file(path) == content_sha256
            )
        except (FileNotFoundError, NotARegularFileError):
            same = False
        if same:
            return
        for _, target, _ in written:  # their event was never published: they would be orphans
            self._lake.delete_file(target)
        raise FileChangedError(f"{printable(path.name)} changed while it was read")

    def _refusal(self, path: Path, size: int) -> str | None:
        if reason := unsafe_name_reason(path.name):
            return reason
        if path.suffix.lower() not in FORMATS_BY_SUFFIX:
            accepted = ", ".join(sorted(FORMATS_BY_SUFFIX))
            return f"unsupported file type {path.suffix or '(none)'!r}; accepted: {accepted}"
        if size == 0:
            return "the file is empty"
        if size > self._settings.max_file_bytes:
            return (
                f"the file has {size:,} bytes, over the limit of "
                f"{self._settings.max_file_bytes:,} (NOVA_INGESTOR__MAX_FILE_BYTES)"
            )
        return None

    # --- reading ---------------------------------------------------------------------------

    def _read_parts(self, path: Path, contracts: list[DatasetContract]) -> list[_Part]:
        fmt = FORMATS_BY_SUFFIX[path.suffix.lower()]
        accepting = [c for c in contracts if fmt in c.formats]
        if not accepting:
            raise ContractViolation(
                f"dataset {contracts[0].name} does not accept {fmt} files "
                f"(accepted: {', '.join(contracts[0].formats)})",
                dataset=contracts[0].name,
            )
        dataset = accepting[0].name if len(accepting) == 1 else None
        try:
            if fmt == "csv":
                return [self._csv_part(path, accepting)]
            content = read_regular(path)
            if fmt == "json":
                header, table = read_json(content, accepting)
                batches = (("", batch) for batch in table.to_batches())
                return [_Part(header, ("",), table.schema, batches)]
            return self._workbook_parts(content, accepting)
        except ContractViolation as violation:
            violation.dataset = violation.dataset or dataset
            raise

    def _csv_part(self, path: Path, contracts: list[DatasetContract]) -> _Part:
        with os.fdopen(open_regular(path), "rb") as handle:
            sample = handle.read(csv_reader.SAMPLE_BYTES)
        complete = len(sample) == path.stat().st_size
        encoding = csv_reader.detect_encoding(sample, whole_file_is_utf8=csv_reader.is_utf8(path))
        layout = csv_reader.detect_layout(sample, contracts, encoding=encoding, complete=complete)
        log.info(
            "csv_layout_detected",
            dataset=layout.header.contract.name,
            encoding=layout.encoding,
            delimiter=layout.delimiter,
            header_row=layout.header.row_number,
            decimal_comma=layout.decimal_comma,
            extra_columns=list(layout.header.extra_columns),
        )
        batches = (("", batch) for batch in csv_reader.read_csv(path, layout))
        schema = csv_reader.contract_schema(layout.header)
        return _Part(layout.header, ("",), schema, batches)

    def _workbook_parts(self, content: bytes, contracts: list[DatasetContract]) -> list[_Part]:
        sheets = read_workbook(
            content, contracts, max_uncompressed_bytes=self._settings.max_uncompressed_bytes
        )
        if not sheets:
            names = ", ".join(c.name for c in contracts)
            raise ContractViolation(f"no sheet has the header of any dataset contract ({names})")
        by_dataset: dict[str, list] = defaultdict(list)
        for sheet in sheets:
            log.info(
                "file_parsed",
                dataset=sheet.dataset,
                sheet=sheet.sheet,
                header_row=sheet.header.row_number,
                rows=sheet.table.num_rows,
                columns=sheet.table.num_columns,
                extra_columns=list(sheet.header.extra_columns),
            )
            by_dataset[sheet.dataset].append(sheet)
        parts = []
        for group in by_dataset.values():
            # Sheets of one dataset may differ in extra columns; missing ones become nulls.
            table = pa.concat_tables([s.table for s in group], promote_options="permissive")
            sheet_names = tuple(s.sheet for s in group)
            parts.append(_Part(group[0].header, sheet_names, table.schema, _sheet_batches(group)))
        return parts

    # --- writing and publishing -------------------------------------------------------------

    def _write_bronze(
        self, path: Path, parts: list[_Part], content_sha256: str, ingested_at: datetime
    ) -> list[tuple[_Part, str, int]]:
        written = []
        source = printable(path.name)
        for part in parts:
            target = bronze_path(part.dataset, content_sha256, ingested_at)
            schema = _lineage_schema(part.schema)
            rows = 0

            def with_lineage(part: _Part = part) -> Iterator[pa.RecordBatch]:
                nonlocal rows
                for sheet, batch in part.batches:
                    rows += batch.num_rows
                    yield _with_lineage(
                        _conform(batch, part.schema), source, sheet, content_sha256, ingested_at
                    )

            began = time.perf_counter()
            try:
                size = self._lake.write_parquet_batches(target, schema, with_lineage())
            except ContractViolation as violation:  # a bad row further down a streamed file
                violation.dataset = violation.dataset or part.dataset
                raise
            log.info(
                "bronze_written",
                dataset=part.dataset,
                path=target,
                rows=rows,
                columns=len(part.schema),
                bytes=size,
                duration_ms=round((time.perf_counter() - began) * 1000, 1),
            )
            written.append((part, target, rows))
        return written

    async def _publish(
        self,
        path: Path,
        written: list[tuple[_Part, str, int]],
        content_sha256: str,
        correlation_id: str,
    ) -> list[BronzeIngested]:
        events = []
        for part, target, rows in written:
            event = BronzeIngested(
                # Derived from the content: an event re-published after a crash is recognisably
                # the same event, even beyond JetStream's duplicate window.
                event_id=uuid.uuid5(EVENT_ID_NAMESPACE, f"{content_sha256}.{part.dataset}").hex,
                producer=PRODUCER,
                correlation_id=correlation_id,
                dataset=part.dataset,
                bronze_path=target,
                content_sha256=content_sha256,
                source_name=printable(path.name),
                row_count=rows,
                extra_columns=list(part.header.extra_columns),
            )
            began = time.perf_counter()
            # Same content, same id: JetStream drops a publish retried after a crash.
            await self._publisher.publish(event, f"{content_sha256}.{part.dataset}")
            log.info(
                "event_published",
                subject=event.subject,
                event_id=event.event_id,
                duration_ms=round((time.perf_counter() - began) * 1000, 1),
            )
            events.append(event)
        return events

    # --- outcomes other than ingested -------------------------------------------------------

    def _duplicate(
        self, path: Path, entry: LedgerEntry, correlation_id: str, started: float
    ) -> IngestOutcome:
        moved_to = self._move(path, self._archive_path(path, entry.content_sha256, self._clock()))
        log.info(
            "file_duplicate",
            content_sha256=entry.content_sha256,
            first_ingested_at=entry.ingested_at.isoformat(),
            first_source_name=entry.source_name,
            moved_to=printable(str(moved_to)),
        )
        for dataset in entry.bronze_paths or {"unknown": ""}:
            self.metrics.files.labels(dataset, "duplicate").inc()
        self.metrics.duration.labels("duplicate").observe(time.perf_counter() - started)
        return IngestOutcome("duplicate", correlation_id, entry.content_sha256, [], moved_to)

    async def _reject_entry(
        self,
        path: Path,
        entry: os.stat_result,
        correlation_id: str,
        contracts: list[DatasetContract],
        started: float,
    ) -> IngestOutcome:
        """A symlink, FIFO, socket or device: quarantined as it is, its target never opened."""
        kind = entry_kind(entry.st_mode)
        violation = ContractViolation(
            f"the inbox entry is a {kind}, not a regular file: it was not read "
            "(only files dropped into the inbox itself are ingested)"
        )
        extra: dict[str, object] = {"entry_type": kind}
        if stat.S_ISLNK(entry.st_mode):
            # The link's own text, read without following it; the target is never opened.
            extra["link_target"] = printable(str(path.readlink()))
        return await self._reject(
            path, "", correlation_id, contracts, violation, started, entry=entry, extra=extra
        )

    async def _reject(
        self,
        path: Path,
        content_sha256: str,
        correlation_id: str,
        contracts: list[DatasetContract],
        violation: ContractViolation,
        started: float,
        *,
        entry: os.stat_result | None = None,
        extra: dict[str, object] | None = None,
    ) -> IngestOutcome:
        dataset = violation.dataset or (contracts[0].name if len(contracts) == 1 else "unknown")
        target = self._free_name(
            self._quarantine / bounded_name(path.name, QUARANTINE_NAME_RESERVE)
        )
        source_name = printable(path.name)
        # Every text in the report is valid UTF-8; the raw bytes of a name that is not are kept
        # as hex, so the report stays readable by the API, the CLI and any JSON tool.
        report = {
            **name_record(path.name),
            "inbox_path": printable(path.relative_to(self._inbox).as_posix()),
            "content_sha256": content_sha256 or None,
            "dataset": dataset,
            "reason": violation.reason,
            "column": violation.column,
            "row": violation.row,
            "rejected_at": self._clock().isoformat(),
            "correlation_id": correlation_id,
            **(extra or {}),
        }
        if target.name != path.name:  # shortened, or numbered beside an earlier one
            report["quarantined_as"] = printable(target.name)
        # The reason goes down first: a crash between the two steps leaves the file in the inbox
        # (retried), never a quarantined file without its reason. Written aside and renamed, so
        # a failed write leaves no empty report behind to push the next attempt to a new name.
        target.parent.mkdir(parents=True, exist_ok=True)
        error_file = target.with_name(target.name + REPORT_SUFFIX)
        staging = target.with_name(f".{uuid.uuid4().hex}{REPORT_SUFFIX}.tmp")
        try:
            staging.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
            staging.replace(error_file)
        finally:
            staging.unlink(missing_ok=True)
        if entry is None:
            moved_to = self._move(path, target)
        else:
            move_entry(path, target, entry.st_mode)
            moved_to = target
        log.warning("file_quarantined", reason=str(violation), moved_to=printable(str(moved_to)))
        self.metrics.files.labels(dataset, "quarantined").inc()
        self.metrics.duration.labels("quarantined").observe(time.perf_counter() - started)
        event = IngestRejected(
            producer=PRODUCER,
            correlation_id=correlation_id,
            dataset=dataset,
            source_name=source_name,
            content_sha256=content_sha256,
            reason=str(violation),
            column=violation.column,
            row=violation.row,
        )
        try:
            await self._publisher.publish(event, f"{content_sha256 or correlation_id}.rejected")
        except Exception:
            # The file and its report in quarantine are the record; the event only notifies.
            log.exception("reject_event_not_published", subject=event.subject)
        return IngestOutcome("quarantined", correlation_id, content_sha256, [event], moved_to)

    def _archive_path(self, path: Path, content_sha256: str, when: datetime) -> Path:
        folder = self._archive / f"{when:%Y}" / f"{when:%m}" / f"{when:%d}"
        name = bounded_name(path.name, ARCHIVE_NAME_RESERVE)
        return self._free_name(folder / f"{content_sha256}-{name}", with_report=False)

    @staticmethod
    def _free_name(target: Path, with_report: bool = True) -> Path:
        """Never overwrite: a second `x.xlsx` in quarantine becomes `x.1.xlsx`."""
        candidate, counter = target, 0
        while os.path.lexists(candidate) or (  # a quarantined link counts, even dangling
            with_report and candidate.with_name(candidate.name + REPORT_SUFFIX).exists()
        ):
            counter += 1
            candidate = target.with_name(f"{target.stem}.{counter}{target.suffix}")
        return candidate

    @staticmethod
    def _move(source: Path, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)  # works across mounts, unlike rename
        return target


def _sheet_batches(sheets: list) -> Iterator[tuple[str, pa.RecordBatch]]:
    for sheet in sheets:
        for batch in sheet.table.to_batches():
            yield sheet.sheet, batch


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Give a sheet's batch the dataset's schema: extra columns other sheets have become null."""
    if batch.schema.equals(schema):
        return batch
    arrays = [
        batch.column(f.name).cast(f.type)
        if f.name in batch.schema.names
        else pa.nulls(batch.num_rows, f.type)
        for f in schema
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def with_lineage(
    table: pa.Table, source_name: str, sheet: str, content_sha256: str, ingested_at: datetime
) -> pa.Table:
    """`table` with the lineage columns every bronze object carries."""
    batches = [
        _with_lineage(b, source_name, sheet, content_sha256, ingested_at)
        for b in table.to_batches()
    ]
    return pa.Table.from_batches(batches, schema=_lineage_schema(table.schema))
