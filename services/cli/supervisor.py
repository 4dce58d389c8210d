"""When `nova up` restarts a child that died, and when it gives up: pure bookkeeping, no processes.

A child that dies is started again after a delay that doubles with each crash in the recent
window (a crash loop must not burn both cores), and the stack stops only when one child crashed
`max_crashes` times within `window_seconds`: then something is wrong that a restart will not fix
(a broken setting, a full disk), and the operator is told which child and why.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class RestartPolicy:
    max_crashes: int = 5
    window_seconds: float = 60.0
    first_delay_seconds: float = 0.5
    max_delay_seconds: float = 30.0


@dataclass
class CrashHistory:
    """The recent crashes of each child, and what to do about the next one."""

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    _crashes: dict[str, deque[float]] = field(default_factory=dict)

    def record(self, name: str, now: float) -> float | None:
        """Note that `name` died at `now`; the delay before restarting it, or None when it
        crashed `max_crashes` times within the window (give up)."""
        crashes = self._crashes.setdefault(name, deque())
        crashes.append(now)
        while crashes and crashes[0] <= now - self.policy.window_seconds:
            crashes.popleft()
        if len(crashes) >= self.policy.max_crashes:
            return None
        # A child that stayed up for a whole window starts again from the first delay.
        delay = self.policy.first_delay_seconds * 2 ** (len(crashes) - 1)
        return min(delay, self.policy.max_delay_seconds)

    def recent(self, name: str) -> int:
        return len(self._crashes.get(name, ()))


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"(cannot read {path}: {error})"


def append_log_event(path: Path, event: str, **fields: object) -> None:
    """One JSON line in a child's own log, as its services write them, so that a restart shows
    up where the crash is (`nova up`'s terminal output is often gone)."""
    line = {
        "timestamp": datetime.now(UTC).isoformat(),
        "level": "warning",
        "service": "nova-up",
        "event": event,
        **fields,
    }
    with path.open("a", encoding="utf-8") as log:
        log.write(json.dumps(line) + "\n")
