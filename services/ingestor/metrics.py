"""Prometheus metrics of the ingestor, on a registry of their own (one per service instance)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
    if not quarantine.is_dir():
        return 0
    return sum(
        1
        for p in quarantine.iterdir()
        if p.is_file() and not p.name.endswith(".error.json") and not p.name.startswith(".")
    )
