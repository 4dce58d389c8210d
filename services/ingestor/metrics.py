"""Prometheus metrics of the ingestor, on a registry of their own (one per service instance)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.quarantine import count_entries

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.files = Counter(
            "nova_ingest_files",
            "Files handled, by dataset and outcome (ingested, duplicate, quarantined).",
            ["dataset", "outcome"],
            registry=self.registry,
        )
        self.rows = Counter(
            "nova_ingest_rows", "Rows written to bronze.", ["dataset"], registry=self.registry
        )
        self.bytes = Counter(
            "nova_ingest_bytes",
            "Source bytes ingested, by file format.",
            ["format"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "nova_ingest_duration_seconds",
            "Time from reading a complete file to archiving or quarantining it.",
            ["outcome"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.deferred = Counter(
            "nova_ingest_deferred",
            "Times a file was left in the inbox to be looked at again, by reason "
            "(open_for_writing, changed_while_read, failed, storage_unavailable).",
            ["reason"],
            registry=self.registry,
        )
        self.abandoned = Counter(
            "nova_ingest_abandoned",
            "Inbox entries noticed but neither ingested nor quarantined, by reason "
            "(vanished: gone from the inbox before they were read; written_after_archiving: "
            "a writer reopened the file as it was archived, its new bytes are not in bronze).",
            ["reason"],
            registry=self.registry,
        )
        self.quarantine_files = Gauge(
            "nova_ingest_quarantine_files",
            "Files waiting in quarantine.",
            registry=self.registry,
        )

    def watch_quarantine(self, quarantine: Path) -> None:
        """The gauge counts the folder at scrape time, so a file an operator removes by hand
        or retries drops out without the ingestor noticing."""
        self.quarantine_files.set_function(lambda: count_quarantined(quarantine))


def count_quarantined(quarantine: Path) -> int:
    # Every entry but folders and reports: a quarantined symlink or FIFO is waiting there too.
    return count_entries(quarantine)
