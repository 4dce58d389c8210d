"""The ingestor's quarantine as `/api/v1/ingestions` lists it: every quarantined entry with
what its report says, whatever the folder holds (reading it is `shared.quarantine`'s job)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.api import models
from shared.quarantine import QuarantinedEntry, printable, quarantined_entries


def text_field(report: dict[str, Any], *names: str) -> str | None:
    """The first of `names` the report has as a string or a number, printable; else None."""
    for name in names:
        value = report.get(name)
        if isinstance(value, str):
            return printable(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    return None


def _listed(entry: QuarantinedEntry) -> models.QuarantinedFile:
    report = entry.report
    when = text_field(report, "rejected_at", "quarantined_at", "time")
    return models.QuarantinedFile(
        name=entry.shown_name,
        dataset=text_field(report, "dataset"),
        reason=text_field(report, "reason"),
        quarantined_at=when or datetime.fromtimestamp(entry.mtime, UTC).isoformat(),
    )


def quarantined(folder: Path | None) -> tuple[int | None, list[models.QuarantinedFile]]:
    """(how many entries, the entries newest first); (None, []) when the folder cannot be
    seen from here, (0, []) when it was never created (nothing was ever quarantined)."""
    if folder is None:
        return None, []
    try:
        entries = quarantined_entries(folder)
    except FileNotFoundError:
        return 0, []
    except OSError:  # not a folder, or not readable by the API
        return None, []
    files = [_listed(entry) for entry in entries]
    files.sort(key=lambda f: (f.quarantined_at or "", f.name), reverse=True)
    return len(files), files
