"""Helpers of the integration tests: the real ingestor as a process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import REPO_ROOT, free_port


@contextmanager
def ingestor_process(
    var: Path, nats_url: str, log: Path, **ingestor_settings: object
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m services.ingestor` on `var`, JSON logs to `log`; terminated on exit.

    Keyword arguments become `NOVA_INGESTOR__<NAME>` variables; the metrics port is a free
    one unless given.
    """
    settings = {"metrics_port": free_port(), **ingestor_settings}
    env = {
        **os.environ,
        "NOVA_VAR_DIR": str(var),
        "NOVA_NATS__URL": nats_url,
        "NOVA_LOG__FORMAT": "json",
        **{f"NOVA_INGESTOR__{name.upper()}": str(value) for name, value in settings.items()},
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.ingestor"],
            cwd=REPO_ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(20)


def wait_while_running(
    predicate: Callable[[], object], process: subprocess.Popen, log: Path, timeout: float = 60
) -> None:
    """Poll `predicate` until it holds; fail with the log's tail if `process` dies or time
    runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        assert process.poll() is None, log.read_text()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"timed out; log tail:\n{log.read_text()[-3000:]}")
