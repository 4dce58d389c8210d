"""Progress of a forecast run: a bar with rate and ETA on a terminal, log lines otherwise."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from shared.logging import get_logger

log = get_logger(__name__)
LOG_EVERY_SECONDS = 5.0


class Rate:
    """Series per second since the first report, and the seconds left at that rate."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.clock = clock or (lambda: time.monotonic())
        self.began: float | None = None
        self.first_done = 0

    def update(self, done: int, total: int) -> tuple[float | None, float | None]:
        now = self.clock()
        if self.began is None:
            # Series finished before the first report (no backtest to run) do not count
            # toward the rate: they took no time.
            self.began, self.first_done = now, done
            return None, None
        elapsed = now - self.began
        advanced = done - self.first_done
        if elapsed <= 0 or advanced <= 0:
            return None, None
        rate = advanced / elapsed
        return rate, max(total - done, 0) / rate


@contextmanager
def progress_reporter(interactive: bool) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar (series done, rate, ETA) on a terminal; structured log lines with
    the same figures otherwise."""
    if interactive:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        with Progress(
            TextColumn("forecasting series"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        ) as bar:
            task = bar.add_task("series", total=None, rate="")
            rate = Rate()

            def update(done: int, total: int) -> None:
                per_second, _ = rate.update(done, total)
                shown = "" if per_second is None else f"{per_second:.1f} series/s"
                bar.update(task, completed=done, total=total, rate=shown)

            yield update
        return
    last = 0.0
    rate = Rate()

    def log_progress(done: int, total: int) -> None:
        nonlocal last
        per_second, eta = rate.update(done, total)
        now = time.monotonic()
        if done == total or now - last >= LOG_EVERY_SECONDS:
            last = now
            log.info(
                "forecast_progress",
                series_done=done,
                series_total=total,
                series_per_second=None if per_second is None else round(per_second, 2),
                eta_seconds=None if eta is None else round(eta),
            )

    yield log_progress
