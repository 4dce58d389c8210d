"""`nova up` supervises its children (issue 13, item 5): a child that dies is restarted with a
growing delay while the others, the API among them, keep serving; only a child that keeps
crashing stops the stack, naming it and showing the end of its log. `UpProcess` runs a real
`nova up` for these tests and those of tests/cli/test_up_*.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from services.cli.runtime import RuntimeFailure, Stack, takeable_inbox_files
from services.cli.supervisor import CrashHistory, RestartPolicy
from services.demo.erp_workbook import generate_demo_workbook
from shared.settings import NovaSettings
from tests.conftest import free_port, json_log_lines

NOVA = str(Path(sys.executable).parent / "nova")
UP_TIMEOUT = 90.0


@dataclass
class UpProcess:
    """A real `nova up` in a test's folder; its output is collected as it comes."""

    process: subprocess.Popen[str]
    var_dir: Path
    api: str
    headers: dict[str, str]
    output: list[str] = field(default_factory=list)

    @classmethod
    def start(
        cls, tmp_path: Path, *args: str, env: dict[str, str] | None = None, api_key: str = ""
    ) -> UpProcess:
        api_port = free_port()
        full_env = {
            **os.environ,
            "NOVA_VAR_DIR": str(tmp_path / "var"),
            "NOVA_NATS__URL": f"nats://127.0.0.1:{free_port()}",
            "NOVA_API__PORT": str(api_port),
            "NOVA_INGESTOR__METRICS_PORT": str(free_port()),
            "NOVA_INGESTOR__STABLE_SECONDS": "0.3",
            "NOVA_API__VERSION_CHECK_SECONDS": "0.2",
            "NOVA_API__KEYS": api_key,
            **(env or {}),
        }
        process = subprocess.Popen(
            [NOVA, "up", *args],
            cwd=tmp_path,
            env=full_env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        up = cls(
            process,
            tmp_path / "var",
            f"http://127.0.0.1:{api_port}",
            {"X-API-Key": api_key.split(",")[0]} if api_key else {},
        )
        threading.Thread(target=up._read, daemon=True).start()
        return up

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    @property
    def text(self) -> str:
        return "".join(self.output)

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = UP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} after {timeout:.0f}s; nova up said:\n{self.text}")
            time.sleep(0.05)

    def wait_for_output(self, text: str, timeout: float = UP_TIMEOUT) -> None:
        self.wait_for(lambda: text in self.text or self.process.poll() is not None, repr(text))
        assert text in self.text, f"nova up exited without {text!r}:\n{self.text}"

    def wait_until_up(self) -> str:
        """The banner, once printed."""
        self.wait_for_output("Press Ctrl-C to stop.")
        return self.text[self.text.index("Nova Corrente data platform is up.") :]

    def item_total(self) -> int:
        response = httpx.get(
            f"{self.api}/api/v1/items", params={"limit": 1}, headers=self.headers, timeout=5
        )
        assert response.status_code == 200, response.text
        return int(response.json()["total"])

    def child_pid(self, marker: str) -> int | None:
        """The child of this `nova up` whose command line holds `marker` (`services.api`,
        `nats-server`): other stacks may run beside."""
        parent = f"PPid:\t{self.process.pid}\n"
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if parent not in (proc / "status").read_text():
                    continue
                command = (proc / "cmdline").read_bytes()
            except OSError:  # exited meanwhile
                continue
            if marker.encode() in command:
                return int(proc.name)
        return None

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            code = self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        return code, self.text


# --- the policy, without processes ---------------------------------------------------------


def test_restart_delays_double_and_repeated_crashes_give_up():
    history = CrashHistory(RestartPolicy(max_crashes=5, window_seconds=60, first_delay_seconds=0.5))
    delays = [history.record("transformer", now) for now in (0.0, 1.0, 2.0, 3.0)]
    assert delays == [0.5, 1.0, 2.0, 4.0]
    assert history.record("ingestor", 3.5) == 0.5  # each child has its own count
    assert history.record("transformer", 4.0) is None  # the fifth within 60 s


def test_a_child_that_stayed_up_a_whole_window_starts_again_from_the_first_delay():
    history = CrashHistory(RestartPolicy(max_crashes=3, window_seconds=60, max_delay_seconds=1))
    assert [history.record("api", now) for now in (0.0, 10.0)] == [0.5, 1.0]
    assert history.record("api", 200.0) == 0.5
    assert history.record("api", 201.0) == 1.0  # capped at max_delay_seconds
    assert history.record("api", 202.0) is None


def test_start_up_waits_only_for_files_the_ingestor_will_take(tmp_path):
    inbox = tmp_path / "inbox"
    (inbox / "sub").mkdir(parents=True)
    for name in (".hidden.csv", "~$planilha.xlsx", "export.csv.part", "sub/.~lock.x.csv#"):
        (inbox / name).write_text("x")
    assert takeable_inbox_files(inbox) == []
    (inbox / "sub" / "real.csv").write_text("a;b\n")
    assert takeable_inbox_files(inbox) == [inbox / "sub" / "real.csv"]


# --- restarts of real processes, without the services ---------------------------------------


def _stack(tmp_path: Path, said: list[str], max_crashes: int = 3) -> Stack:
    policy = RestartPolicy(max_crashes=max_crashes, window_seconds=60, first_delay_seconds=0.05)
    return Stack(NovaSettings(var_dir=tmp_path), policy=policy, say=said.append)


def _supervise_until(stack: Stack, done: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "supervision did not get there"
        stack.supervise()
        time.sleep(0.02)


def test_a_child_that_dies_is_restarted_and_logged(tmp_path):
    said: list[str] = []
    stack = _stack(tmp_path, said)
    marker = tmp_path / "ran-once"
    # Dies the first time, stays up the second (as a service after a transient failure).
    script = (
        "import pathlib, sys, time\n"
        f"marker = pathlib.Path({str(marker)!r})\n"
        "if not marker.exists():\n"
        "    marker.touch(); print('first run: dying', flush=True); sys.exit(4)\n"
        "time.sleep(60)\n"
    )
    child = stack._spawn("worker", [sys.executable, "-c", script])
    first = child.process
    try:
        _supervise_until(stack, lambda: child.process is not first)
        _supervise_until(stack, lambda: any("restarted" in line for line in said))
        assert child.process.poll() is None  # the second run keeps running
        assert "worker exited with code 4; restarting it in 0.05s" in said[0]
        events = [line["event"] for line in json_log_lines(child.log_path)]
        assert events == ["child_exited", "child_restarted"]
        assert "first run: dying" in child.log_path.read_text()
    finally:
        stack.stop()


def test_a_child_that_keeps_crashing_stops_the_stack_naming_it_with_its_log_tail(tmp_path):
    said: list[str] = []
    stack = _stack(tmp_path, said, max_crashes=3)
    crashing = [sys.executable, "-c", "import sys; print('boom: lake is read-only'); sys.exit(3)"]
    sleeper = stack._spawn("api", [sys.executable, "-c", "import time; time.sleep(60)"])
    stack._spawn("transformer", crashing)
    try:
        with pytest.raises(RuntimeFailure) as failure:
            _supervise_until(stack, lambda: False)
        message = str(failure.value)
        assert message.startswith("transformer crashed 3 times within 60s (last exit code 3)")
        assert "boom: lake is read-only" in message
        assert sum("restarting" in line for line in said) == 2
        assert sleeper.process.poll() is None  # the others served throughout
    finally:
        stack.stop()


# --- a real `nova up` -------------------------------------------------------------------------


@pytest.mark.slow
def test_nova_up_restarts_killed_children_while_the_api_keeps_serving(tmp_path):
    up = UpProcess.start(
        tmp_path,
        "--no-demo",
        "--no-forecast",
        env={"NOVA_NATS__USER": "nova", "NOVA_NATS__PASSWORD": "s3cret-pw"},
        api_key="key-1",
    )
    try:
        up.wait_until_up()
        assert up.item_total() == 0
        for victims, restarted in (
            (("services.transformer", "services.ingestor"), ("transformer", "ingestor")),
            (("nats-server",), ("nats",)),
        ):
            pids = [up.child_pid(victim) for victim in victims]
            assert all(pids), up.text
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            for name in restarted:
                # The API answers all along, with nobody behind it restarted yet.
                up.wait_for(
                    lambda name=name: up.item_total() == 0 and f"{name} restarted" in up.text,
                    f"{name} restarted",
                )
                assert f"{name} exited with code -9; restarting it in" in up.text
            assert all(up.child_pid(v) not in (None, *pids) for v in victims)
        assert "child_restarted" in {
            line["event"] for line in json_log_lines(up.var_dir / "log" / "transformer.log")
        }
        # The restarted services work, through the restarted NATS, with its credentials.
        workbook = generate_demo_workbook(tmp_path / "new", items=6, depots=3, days=40, seed=2)
        staged = up.var_dir / workbook.path.name
        workbook.path.replace(staged)
        staged.replace(up.var_dir / "inbox" / workbook.path.name)
        up.wait_for(lambda: up.item_total() > 0, "the new workbook's materials in the API")
        assert up.process.poll() is None
    finally:
        code, output = up.stop()
    assert code == 0, output
    for name in ("api", "transformer", "ingestor", "nats"):
        assert f"  {name} stopped\n" in output, output
