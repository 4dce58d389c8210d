"""The ingestor's quarantine folder as readers see it: each entry, its report, printable names.

The ingestor writes a quarantined entry and `<name>.error.json` beside it; `nova quarantine`
and `/api/v1/ingestions` read them back. Names and reports come from outside (a file name is
any bytes but `/`, a report may be missing, cut short, not UTF-8, not JSON, or of another
version's shape), so a reader never trusts either and shows a strange one for what it is.
Nothing is followed or opened but a regular report file: a quarantined link or FIFO stays unread.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPORT_SUFFIX = ".error.json"
REPORT_MAX_BYTES = 64 * 1024  # a report is a few hundred bytes; a bigger one is not read whole
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` as valid UTF-8: the undecodable bytes of a file name (Python's surrogate escapes)
    shown as `\\xNN`, as the ingestor writes them into reports and events."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no byte stands for (from JSON)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def for_terminal(text: object) -> str:
    """`printable` text with control characters as `\\xNN` too: a name or a reason printed on
    a terminal can neither break a line nor send an escape sequence (colours, a window title)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", printable(str(text)))


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
    try:
        return _printable_values(report)
    except RecursionError:
        return {"reason": "(unreadable report: nested too deep)"}


def _printable_values(value: Any) -> Any:
    """Every text in a report made valid UTF-8, so that any reader can print or encode it."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable(str(k)): _printable_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable_values(v) for v in value]
    return value


@dataclass(frozen=True)
class QuarantinedEntry:
    path: Path  # the entry itself; for a report whose entry is gone, where the entry was
    mtime: float  # of the entry, or of the report when the entry is gone
    report: dict[str, Any]
    present: bool  # False: only the report is there (an older ingestor left such)

    @property
    def shown_name(self) -> str:
        return printable(self.path.name)


def _is_entry(item: os.DirEntry[str]) -> bool:
    """A quarantined entry, not a report, a report being written (hidden) or `retried/`."""
    return not item.name.startswith(".") and not item.is_dir(follow_symlinks=False)


def count_entries(folder: Path) -> int:
    """How many entries wait in `folder` (reports not read: this runs at every scrape)."""
    if not folder.is_dir():
        return 0
    with os.scandir(folder) as scan:
        return sum(1 for e in scan if _is_entry(e) and not e.name.endswith(REPORT_SUFFIX))


def quarantined_entries(folder: Path) -> list[QuarantinedEntry]:
    """Every entry in `folder` with its report, sorted by name; reports without their entry
    too. Raises OSError when the folder cannot be read (FileNotFoundError when it was never
    made, which means nothing was ever quarantined)."""
    found: dict[str, float] = {}
    reports: dict[str, float] = {}
    with os.scandir(folder) as scan:
        for item in scan:
            try:
                if not _is_entry(item):
                    continue
                mtime = item.stat(follow_symlinks=False).st_mtime
            except OSError:  # gone meanwhile
                continue
            if item.name.endswith(REPORT_SUFFIX):
                reports[item.name.removesuffix(REPORT_SUFFIX)] = mtime
            else:
                found[item.name] = mtime
    orphans = {name: mtime for name, mtime in reports.items() if name not in found}
    return [
        QuarantinedEntry(
            path=folder / name,
            mtime=mtime,
            report=read_report(folder / (name + REPORT_SUFFIX)),
            present=name not in orphans,
        )
        for name, mtime in sorted((found | orphans).items())
    ]
