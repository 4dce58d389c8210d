"""The ingestor's quarantine as `/api/v1/ingestions` lists it: every quarantined entry with
what its report says, whatever the folder holds (issue 13, item 4).

Names and reports come from outside (a file name is any bytes but `/`, a report may be
missing, cut short, not UTF-8, not JSON, or of another version's shape), so every value is
checked here and a strange one is shown for what it is, never a 500. Nothing is followed or
opened but a regular report file: a quarantined link or FIFO stays unread.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.api import models

REPORT_SUFFIX = ".error.json"
REPORT_MAX_BYTES = 64 * 1024  # a report is a few hundred bytes; a bigger one is not read whole


def printable(text: str) -> str:
    """`text` as valid UTF-8: a name the file system gave with undecodable bytes (Python's
    surrogate escapes) shows them as `\\xNN`, as the ingestor and the CLI show them."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no byte stands for (from JSON)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def text_field(report: dict[str, Any], *names: str) -> str | None:
    """The first of `names` the report has as a string or a number, printable; else None."""
    for name in names:
        value = report.get(name)
        if isinstance(value, str):
            return printable(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    return None


def read_report(path: Path) -> dict[str, Any]:
    """The report at `path` as an object; `{"reason": ...}` saying why when it cannot be
    read as one. Opened without following a link and without blocking on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return {"reason": "(no report beside it)"}
    except OSError as error:
        return {"reason": f"(unreadable report: {error.strerror or type(error).__name__})"}
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return {"reason": "(unreadable report: not a regular file)"}
        with os.fdopen(fd, "rb", closefd=False) as stream:
            raw = stream.read(REPORT_MAX_BYTES + 1)
    except OSError as error:
        return {"reason": f"(unreadable report: {error.strerror or type(error).__name__})"}
    finally:
        os.close(fd)
    if len(raw) > REPORT_MAX_BYTES:
        return {"reason": f"(unreadable report: over {REPORT_MAX_BYTES} bytes)"}
    try:
        # Undecodable bytes kept as surrogate escapes: `printable` shows them as \xNN.
        report = json.loads(raw.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError) as error:
        return {"reason": f"(unreadable report: not JSON: {printable(str(error))[:200]})"}
    if not isinstance(report, dict):
        return {"reason": f"(unreadable report: a JSON {type(report).__name__}, not an object)"}
    return report


def entry(folder: Path, name: str, mtime: float) -> models.QuarantinedFile:
    report = read_report(folder / (name + REPORT_SUFFIX))
    when = text_field(report, "rejected_at", "quarantined_at", "time")
    return models.QuarantinedFile(
        name=printable(name),
        dataset=text_field(report, "dataset"),
        reason=text_field(report, "reason"),
        quarantined_at=when or datetime.fromtimestamp(mtime, UTC).isoformat(),
    )


def quarantined(folder: Path | None) -> tuple[int | None, list[models.QuarantinedFile]]:
    """(how many entries, the entries newest first); (None, []) when the folder cannot be
    seen from here, (0, []) when it was never created (nothing was ever quarantined)."""
    if folder is None:
        return None, []
    try:
        scan = os.scandir(folder)
    except FileNotFoundError:
        return 0, []
    except OSError:  # not a folder, or not readable by the API
        return None, []
    found: dict[str, float] = {}
    reports: dict[str, float] = {}
    with scan as entries:
        for item in entries:
            if item.name.startswith("."):  # a report being written
                continue
            try:
                if item.is_dir(follow_symlinks=False):  # `retried/` and the like
                    continue
                mtime = item.stat(follow_symlinks=False).st_mtime
            except OSError:  # gone meanwhile
                continue
            if item.name.endswith(REPORT_SUFFIX):
                reports[item.name.removesuffix(REPORT_SUFFIX)] = mtime
            else:
                found[item.name] = mtime
    # A report whose file is not there (an older ingestor left such) is listed too.
    found |= {name: mtime for name, mtime in reports.items() if name not in found}
    files = [entry(folder, name, mtime) for name, mtime in found.items()]
    files.sort(key=lambda f: (f.quarantined_at or "", f.name), reverse=True)
    return len(files), files
