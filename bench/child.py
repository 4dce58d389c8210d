"""Inside a measured child (`bench.<name>.child`): the probe a path times its work with, and
the child's `main`. Imports as little as possible: whatever is imported here is in every
measured path's peak RSS.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class Probe:
    """Wall and CPU time of the measured section; baseline peak RSS just before it."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.baseline_rss_kib = 0
        self._wall = 0.0
        self._cpu = 0.0

    @staticmethod
    def _cpu_now() -> float:
        times = os.times()
        return times.user + times.system

    def start(self) -> None:
        self.baseline_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self._cpu = self._cpu_now()
        self._wall = time.perf_counter()

    def stop(self) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu_seconds = self._cpu_now() - self._cpu


def vm_hwm_kib() -> int | None:
    """This process image's own peak RSS (Linux), a cross-check of `ru_maxrss`."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def child_main(functions: dict[str, Callable[[Path, Path, Probe], dict[str, Any]]]) -> int:
    """`python -m bench.<name>.child FUNCTION SOURCE WORKDIR RESULT_JSON`: runs
    `functions[FUNCTION]` and writes its result, wall and CPU seconds and peak RSS
    (`ru_maxrss`, and `VmHWM`) to RESULT_JSON."""
    function, source, workdir, result = sys.argv[1:]
    probe = Probe()
    measured = functions[function](Path(source), Path(workdir), probe)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    hwm_kib = vm_hwm_kib()
    measured.update(
        vm_hwm_mb=None if hwm_kib is None else hwm_kib / 1024,
        seconds=probe.seconds,
        cpu_seconds=probe.cpu_seconds,
        peak_rss_mb=peak_kib / 1024,
        baseline_rss_mb=probe.baseline_rss_kib / 1024,
    )
    Path(result).write_text(json.dumps(measured))
    return 0
