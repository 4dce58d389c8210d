"""Progress of a forecast run: a bar with ETA on a terminal, log lines otherwise."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from shared.logging import get_logger

log = get_logger(__name__)
LOG_EVERY_SECONDS = 5.0


@contextmanager
def progress_reporter(interactive: bool) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar with ETA on a terminal; structured log lines otherwise."""
    if interactive:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        with Progress(
            TextColumn("forecasting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        ) as bar:
            task = bar.add_task("series", total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            yield update
        return
    last = 0.0

    def log_progress(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done == total or now - last >= LOG_EVERY_SECONDS:
            last = now
            log.info("forecast_progress", series_done=done, series_total=total)

    yield log_progress
