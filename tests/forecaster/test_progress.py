"""The progress display: series done, rate and ETA, on a terminal and in log lines."""

from __future__ import annotations

import io

import pytest
from structlog.testing import capture_logs

from services.forecaster import progress
from services.forecaster.progress import Rate, progress_reporter


def test_rate_and_eta_from_series_done_over_time():
    now = [100.0]
    rate = Rate(clock=lambda: now[0])
    assert rate.update(10, 110) == (None, None)  # the 10 done before the first report are free
    now[0] = 110.0
    per_second, eta = rate.update(30, 110)
    assert per_second == pytest.approx(2.0)
    assert eta == pytest.approx(40.0)  # 80 left at 2 a second
    now[0] = 150.0
    assert rate.update(110, 110) == (pytest.approx(2.0), 0.0)


def test_log_lines_carry_the_rate_and_the_eta(monkeypatch):
    ticks = iter([0.0, 0.0, 10.0, 10.0, 20.0, 20.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(ticks))
    monkeypatch.setattr(progress, "LOG_EVERY_SECONDS", 0.0)
    with capture_logs() as logs, progress_reporter(interactive=False) as report:
        report(0, 100)
        report(50, 100)
    lines = [line for line in logs if line["event"] == "forecast_progress"]
    assert lines[-1]["series_done"] == 50
    assert lines[-1]["series_per_second"] == 5.0
    assert lines[-1]["eta_seconds"] == 10


def test_the_terminal_bar_shows_done_rate_and_eta(monkeypatch):
    import rich.progress

    console = rich.console.Console(file=io.StringIO(), force_terminal=True, width=160)
    original = rich.progress.Progress

    def with_console(*columns, **kwargs):
        return original(*columns, console=console, **kwargs)

    monkeypatch.setattr(rich.progress, "Progress", with_console)
    with progress_reporter(interactive=True) as report:
        report(0, 40)
        report(40, 40)
    text = console.file.getvalue()
    assert "40/40" in text and "series/s" in text and "ETA" in text
