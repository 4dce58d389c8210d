"""Ctrl-C while `nova up` starts a child: the child is recorded, hence stopped, whatever the
moment. A real SIGINT is raised in this process from inside the start-up code (a patched
`Popen`, or the recording of the child), as if the key were pressed at exactly that line."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from services.cli import runtime
from services.cli.runtime import Stack, StartGuard, StartInterrupted
from shared.settings import NovaSettings

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def guard() -> Iterator[StartGuard]:
    """A guard installed as `nova up` installs it, for SIGINT only; restored afterwards.

    SIGTERM is left at its default meanwhile: an ignored one would be inherited by the child,
    which then outlives `stop`'s SIGTERM."""
    guard = StartGuard()
    previous_int = signal.signal(signal.SIGINT, guard.handler)
    previous_term = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield guard
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)


def _ctrl_c() -> None:
    signal.raise_signal(signal.SIGINT)  # the handler runs before this function returns


def _recording_popen(started: list[subprocess.Popen[bytes]], *, interrupt: bool):
    real = subprocess.Popen

    def popen(*args, **kwargs):
        process = real(*args, **kwargs)
        started.append(process)  # whatever happens next, the test can kill it
        if interrupt:
            _ctrl_c()  # the child runs; Popen has not returned yet
        return process

    return popen


def _interrupted_before_recording():
    real = runtime.Child

    def child(*args, **kwargs):
        _ctrl_c()  # Popen returned; the child is not in `children` yet
        return real(*args, **kwargs)

    return child


@pytest.mark.parametrize("moment", ["inside Popen", "before the child is recorded"])
def test_ctrl_c_while_spawning_leaves_no_child_unrecorded(tmp_path, monkeypatch, guard, moment):
    started: list[subprocess.Popen[bytes]] = []
    inside = moment == "inside Popen"
    monkeypatch.setattr(runtime.subprocess, "Popen", _recording_popen(started, interrupt=inside))
    if not inside:
        monkeypatch.setattr(runtime, "Child", _interrupted_before_recording())
    stack = Stack(NovaSettings(var_dir=tmp_path), guard)
    try:
        # The interrupt still ends the start-up, right after the child is recorded.
        with pytest.raises(StartInterrupted):
            stack._spawn("sleeper", SLEEPER)
        assert guard.requested
        assert [child.name for child in stack.children] == ["sleeper"]
        process = stack.children[0].process
        assert process.poll() is None
        assert stack.stop() == [("sleeper", -signal.SIGTERM)]
        assert process.poll() is not None, "the child outlived the stop"
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_ctrl_c_outside_a_spawn_interrupts_at_once(guard):
    with pytest.raises(StartInterrupted):
        _ctrl_c()
    assert guard.requested


def test_once_disarmed_a_signal_only_asks_to_stop(tmp_path, guard):
    guard.disarm()
    _ctrl_c()
    assert guard.requested
    stack = Stack(NovaSettings(var_dir=tmp_path), guard)
    child = stack._spawn("sleeper", SLEEPER)  # no interrupt held back for the end of a spawn
    try:
        assert stack.children == [child]
    finally:
        stack.stop()
