"""In-memory adapters for IngestService unit tests: a ledger, a publisher, and a harness that
wires them to a local lake and inbox/archive/quarantine folders under tmp_path."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from services.ingestor.ledger import LedgerEntry
from services.ingestor.metrics import IngestMetrics
from services.ingestor.service import IngestOutcome, IngestService
from shared.events import Event
from shared.settings import IngestorSettings, StorageSettings
from shared.storage import Lake

NOW = datetime(2025, 3, 7, 14, 30, 15, tzinfo=UTC)


class MemoryLedger:
    """The `Ledger` protocol on a dict; remembers every call so tests can see what was asked."""

    def __init__(self, entries: Iterable[LedgerEntry] = ()) -> None:
        self.entries: dict[str, LedgerEntry] = {e.content_sha256: e for e in entries}
        self.gets: list[str] = []
        self.puts: list[LedgerEntry] = []

    async def get(self, content_sha256: str) -> LedgerEntry | None:
        self.gets.append(content_sha256)
        return self.entries.get(content_sha256)

    async def put(self, entry: LedgerEntry) -> None:
        self.puts.append(entry)
        self.entries[entry.content_sha256] = entry


class RecordingPublisher:
    """Keeps (event, message_id) pairs; with `fail=True` behaves like a broker that is down."""

    def __init__(self, fail: bool = False) -> None:
        self.published: list[tuple[Event, str]] = []
        self.fail = fail

    async def publish(self, event: Event, message_id: str) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.published.append((event, message_id))

    @property
    def events(self) -> list[Event]:
        return [event for event, _ in self.published]


class IngestEnv:
    """An IngestService on a local lake under tmp_path, with the fakes above and a fixed clock."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        publisher: RecordingPublisher | None = None,
        ledger: MemoryLedger | None = None,
        metrics: IngestMetrics | None = None,
        now: datetime = NOW,
        **settings: object,
    ) -> None:
        self.inbox = tmp_path / "inbox"
        self.archive = tmp_path / "archive"
        self.quarantine = tmp_path / "quarantine"
        self.lake_root = tmp_path / "lake"
        self.inbox.mkdir(parents=True)
        self.lake = Lake.from_settings(StorageSettings(local_root=self.lake_root))
        self.publisher = publisher or RecordingPublisher()
        self.ledger = ledger or MemoryLedger()
        self.metrics = metrics or IngestMetrics()
        self.now = now
        self.settings = IngestorSettings(
            inbox_dir=self.inbox,
            archive_dir=self.archive,
            quarantine_dir=self.quarantine,
            **settings,
        )
        self.service = IngestService(
            self.lake,
            self.publisher,
            self.ledger,
            self.settings,
            self.metrics,
            clock=lambda: self.now,
        )

    def drop(self, relative: str, content: bytes) -> Path:
        """Put a file in the inbox (or in `inbox/<dataset>/` when `relative` says so)."""
        path = self.inbox / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return path

    def process(self, path: Path) -> IngestOutcome:
        return asyncio.run(self.service.process(path))

    def ingest(self, relative: str, content: bytes) -> IngestOutcome:
        return self.process(self.drop(relative, content))

    @staticmethod
    def report(outcome: IngestOutcome) -> dict:
        """The `.error.json` written beside a quarantined file."""
        assert outcome.status == "quarantined", outcome
        return json.loads(
            outcome.moved_to.with_name(outcome.moved_to.name + ".error.json").read_text()
        )

    def lake_files(self) -> list[str]:
        """Every file under the lake folder, hidden staging files included."""
        if not self.lake_root.exists():
            return []
        return sorted(
            p.relative_to(self.lake_root).as_posix()
            for p in self.lake_root.rglob("*")
            if p.is_file()
        )
