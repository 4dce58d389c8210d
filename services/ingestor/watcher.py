"""Notice files in the inbox and hand them over only once they are complete.

A copy in progress, an `mv` from another folder (no close event) and a share that sends no
events at all (polling mode) all end the same way: a file is ready when its size and mtime
have not changed for `stable_seconds`. (Whether a writer still holds it open is the service's
next question.) Entries are looked at with lstat: a symlink, a FIFO or a device is handed over
as what it is, to be quarantined unread, never followed.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserverVFS

from shared.logging import get_logger
from shared.quarantine import printable
from shared.settings import IngestorSettings

log = get_logger(__name__)


def is_ignored(path: Path) -> bool:
    """Temporary and hidden names that editors and copy tools leave behind: the ingestor never
    takes these (everything else in the inbox is ingested or quarantined)."""
    name = path.name.lower()
    return name.startswith((".", "~$")) or name.endswith(
        (".tmp", ".part", ".crdownload", ".error.json")
    )


@dataclass
class _Observation:
    size: int
    mtime_ns: int
    unchanged_since: float
    not_before: float = 0.0  # a failed file waits out its backoff


class StabilityTracker:
    """Pure bookkeeping: which noticed paths have been quiet long enough to read."""

    def __init__(
        self, stable_seconds: float, on_vanished: Callable[[Path], None] | None = None
    ) -> None:
        self._stable_seconds = stable_seconds
        self._on_vanished = on_vanished
        self._seen: dict[Path, _Observation] = {}
        self._lock = threading.Lock()

    def notice(self, path: Path, not_before: float = 0.0) -> None:
        if is_ignored(path):
            return
        with self._lock:
            seen = self._seen.get(path)
            if seen is None:
                self._seen[path] = _Observation(-1, -1, 0.0, not_before)
                log.info("file_received", file=printable(str(path)))
            else:
                seen.not_before = max(seen.not_before, not_before)

    def pending(self) -> list[Path]:
        with self._lock:
            return list(self._seen)

    def ready(self, now: float) -> list[Path]:
        """Paths whose (size, mtime) held still for `stable_seconds`; they are forgotten."""
        done: list[Path] = []
        with self._lock:
            for path, seen in list(self._seen.items()):
                try:
                    entry = path.lstat()  # the entry itself, not what a link points to
                except FileNotFoundError:
                    del self._seen[path]  # moved away or deleted before it settled
                    if seen.size != -1:  # it was there at a look: someone took it back
                        self._vanished(path)
                    continue
                if stat.S_ISDIR(entry.st_mode):
                    del self._seen[path]  # its files are noticed one by one
                    continue
                if (entry.st_size, entry.st_mtime_ns) != (seen.size, seen.mtime_ns):
                    # A failed file's backoff outlives the first look at its size and mtime.
                    self._seen[path] = _Observation(
                        entry.st_size, entry.st_mtime_ns, now, seen.not_before
                    )
                elif now - seen.unchanged_since >= self._stable_seconds and now >= seen.not_before:
                    del self._seen[path]
                    done.append(path)
        return sorted(done)

    def _vanished(self, path: Path) -> None:
        log.info("file_vanished", file=printable(str(path)))
        if self._on_vanished is not None:
            self._on_vanished(path)


class _NoticeHandler(FileSystemEventHandler):
    def __init__(self, tracker: StabilityTracker) -> None:
        self._tracker = tracker

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        target = getattr(event, "dest_path", "") or event.src_path
        self._tracker.notice(Path(str(target)))


def start_observer(
    inbox: Path, tracker: StabilityTracker, settings: IngestorSettings
) -> BaseObserver:
    # Polling looks at entries with lstat: with stat a dangling link would be invisible and a
    # link would show its target's size and mtime.
    observer: BaseObserver = (
        PollingObserverVFS(os.lstat, os.scandir, polling_interval=settings.poll_interval_seconds)
        if settings.polling
        else Observer()
    )
    observer.schedule(_NoticeHandler(tracker), str(inbox), recursive=True)
    observer.start()
    return observer


def scan_existing(inbox: Path, tracker: StabilityTracker) -> None:
    """Entries that arrived while the service was down (folders are searched, not followed)."""
    for path in sorted(_entries(inbox)):
        tracker.notice(path)


def _entries(folder: Path) -> Iterator[Path]:
    with os.scandir(folder) as found:
        for entry in found:
            if entry.is_dir(follow_symlinks=False):
                yield from _entries(Path(entry.path))
            else:
                yield Path(entry.path)
