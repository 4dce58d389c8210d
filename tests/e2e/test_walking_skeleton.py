"""The thin slice through real processes: nats-server, ingestor, transformer and API started by
`nova up`, an ERP workbook dropped in the inbox, its materials served by the API."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openpyxl
import pytest

from services.demo.erp_workbook import REQUISITIONS_SHEET, generate_demo_workbook
from services.demo.sources import generate_demo_sources
from services.ingestor.contracts import CONTRACTS
from tests.conftest import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
NOVA = str(Path(sys.executable).parent / "nova")
ARRIVAL_TIMEOUT = 120.0


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    var_dir: Path
    api: str
    output: list[str]

    @property
    def inbox(self) -> Path:
        return self.var_dir / "inbox"

    def drop(self, source: Path) -> Path:
        """Copy beside the inbox, then rename in: how a careful planner's tool would do it."""
        staging = self.var_dir / "staging"
        staging.mkdir(exist_ok=True)
        staged = Path(shutil.copy(source, staging / source.name))
        target = self.inbox / source.name
        staged.replace(target)
        return target

    def all_item_codes(self) -> list[str]:
        codes: list[str] = []
        offset = 0
        while True:
            page = httpx.get(
                f"{self.api}/api/v1/items", params={"limit": 500, "offset": offset}, timeout=5
            ).json()
            codes.extend(item["item_code"] for item in page["items"])
            offset += 500
            if offset >= page["total"]:
                return codes

    def wait_for_total(self, expected: int) -> None:
        deadline = time.monotonic() + ARRIVAL_TIMEOUT
        total = -1
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "nova up died:\n" + "".join(self.output)
            response = httpx.get(f"{self.api}/api/v1/items", params={"limit": 1}, timeout=5)
            total = response.json()["total"]
            if total == expected:
                return
            time.sleep(0.5)
        raise AssertionError(
            f"API has {total} items after {ARRIVAL_TIMEOUT}s, expected {expected}"
            f"\nlogs:\n{self.logs_tail()}"
        )

    def log_lines(self, service: str) -> list[dict[str, object]]:
        path = self.var_dir / "log" / f"{service}.log"
        return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]

    def logs_tail(self) -> str:
        logs = self.var_dir / "log"
        return "\n".join(
            f"== {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-10:])
            for p in sorted(logs.glob("*.log"))
        )


def _start(tmp_path: Path, *args: str) -> RunningStack:
    api_port, nats_port = free_port(), free_port()
    env = {
        **os.environ,
        "NOVA_VAR_DIR": str(tmp_path / "var"),
        "NOVA_NATS__URL": f"nats://127.0.0.1:{nats_port}",
        "NOVA_API__PORT": str(api_port),
        "NOVA_INGESTOR__METRICS_PORT": str(free_port()),
        "NOVA_INGESTOR__STABLE_SECONDS": "0.5",
        "NOVA_API__VERSION_CHECK_SECONDS": "0.2",
    }
    process = subprocess.Popen(
        # The forecast that `nova up` starts takes minutes of both cores; these tests are about
        # the pipeline, and tests/forecaster covers forecast runs on demo gold and real NATS.
        [NOVA, "up", "--no-forecast", *args],
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output: list[str] = []
    assert process.stdout is not None
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    for line in process.stdout:  # nova up prints its banner once the stack answers
        output.append(line)
        if "Press Ctrl-C to stop." in line or time.monotonic() > deadline:
            break
    if process.poll() is not None or "Press Ctrl-C to stop.\n" not in output:
        process.kill()
        raise AssertionError("nova up did not come up:\n" + "".join(output))
    return RunningStack(process, tmp_path / "var", f"http://127.0.0.1:{api_port}", output)


def _processes_with_var_dir(var_dir: Path) -> list[int]:
    """PIDs whose environment points at this test's var dir: nova up's children, if alive."""
    marker = f"NOVA_VAR_DIR={var_dir}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:  # exited meanwhile, or not ours to read
            continue
    return found


SERVICES = {"services.ingestor", "services.transformer", "services.api"}


def _services_started(var_dir: Path) -> set[str]:
    """Which of the three services run (exec'd, not just forked) for this test's var dir."""
    started = set()
    for pid in _processes_with_var_dir(var_dir):
        try:
            command = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
        except OSError:  # exited meanwhile
            continue
        started |= {name for name in SERVICES if name.encode() in command}
    return started


def _stop(stack: RunningStack) -> str:
    stack.process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    rest, _ = stack.process.communicate(timeout=60)
    return rest


@pytest.fixture
def demo_stack(tmp_path: Path) -> Iterator[RunningStack]:
    stack = _start(tmp_path)
    yield stack
    if stack.process.poll() is None:
        _stop(stack)


@pytest.fixture
def empty_stack(tmp_path: Path) -> Iterator[RunningStack]:
    stack = _start(tmp_path, "--no-demo")
    yield stack
    if stack.process.poll() is None:
        _stop(stack)


def test_nova_up_serves_demo_materials_and_stops_cleanly(demo_stack: RunningStack, tmp_path):
    # nova up drops the default demo workbook; regenerate it here to know what to expect.
    expected = generate_demo_workbook(tmp_path / "expected")
    workbook = openpyxl.load_workbook(expected.path, read_only=True)
    rows = workbook[REQUISITIONS_SHEET].iter_rows(min_row=2, max_col=2, values_only=True)
    expected_codes = sorted({code for _, code in rows})
    workbook.close()

    demo_stack.wait_for_total(len(expected_codes))
    assert sorted(demo_stack.all_item_codes()) == expected_codes
    assert any(line.startswith("  API") for line in demo_stack.output)
    assert any(line.startswith("  dashboard") for line in demo_stack.output)
    assert any("inbox" in line for line in demo_stack.output)

    # One file's trip is followable across the three services by its correlation id.
    received = [
        e
        for e in demo_stack.log_lines("ingestor")
        if e["event"] == "file_complete" and e["file"] == expected.path.name
    ]
    assert len(received) == 1
    correlation_id = received[0]["correlation_id"]
    for service, event in (
        ("ingestor", "event_published"),
        ("transformer", "gold_committed"),
        ("api", "gold_change_heard"),
    ):
        lines = demo_stack.log_lines(service)
        assert all({"service", "event", "level", "timestamp"} <= line.keys() for line in lines)
        assert any(
            line["event"] == event and line.get("correlation_id") == correlation_id
            for line in lines
        ), f"{service} never logged {event} for {correlation_id}"

    # Every demo source reached bronze through its contract; nothing was quarantined.
    sources = generate_demo_sources(tmp_path / "expected-sources")
    archive = demo_stack.var_dir / "archive"
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    while len([p for p in archive.rglob("*") if p.is_file()]) < len(sources.paths):
        assert time.monotonic() < deadline, "demo sources were not all archived"
        time.sleep(0.2)
    archived = sorted(p.name.split("-", 1)[1] for p in archive.rglob("*") if p.is_file())
    assert archived == sorted(p.name for p in sources.paths)
    assert not any(demo_stack.inbox.iterdir())
    quarantine = demo_stack.var_dir / "quarantine"
    assert not quarantine.exists() or not any(quarantine.iterdir())
    bronze = demo_stack.var_dir / "lake" / "bronze"
    assert sorted(p.name for p in bronze.iterdir()) == sorted(CONTRACTS)

    assert len(_processes_with_var_dir(demo_stack.var_dir)) == 5  # nova up, nats, 3 services
    rest = _stop(demo_stack)
    assert demo_stack.process.returncode == 0, rest
    for service in ("api", "transformer", "ingestor", "nats"):
        assert f"  {service} stopped\n" in rest, rest
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{demo_stack.api}/health", timeout=2)
    assert _processes_with_var_dir(demo_stack.var_dir) == []


def test_real_workbook_gives_exactly_its_879_material_codes(
    empty_stack: RunningStack, real_workbook: Path
):
    workbook = openpyxl.load_workbook(real_workbook, read_only=True)
    rows = workbook["CUSTO DE MATERIAL E SERVIÇOS"].iter_rows(
        min_row=2, max_col=2, values_only=True
    )
    sheet_codes = {code for depot, code in rows if code is not None}
    workbook.close()
    assert len(sheet_codes) == 879  # what ../shared/data/README.md documents

    empty_stack.drop(real_workbook)
    empty_stack.wait_for_total(879)
    served = empty_stack.all_item_codes()
    assert len(served) == len(set(served)) == 879
    assert set(served) == sheet_codes  # text equality: "010825" stays "010825", "0164" stays
    assert any(code.startswith("0") for code in served)


def test_broken_file_is_quarantined_with_a_reason_and_the_stack_keeps_serving(
    empty_stack: RunningStack, tmp_path: Path
):
    broken = tmp_path / "export.xlsx"
    broken.write_bytes(b"this is not a workbook")
    empty_stack.drop(broken)
    report_path = empty_stack.var_dir / "quarantine" / "export.xlsx.error.json"
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    while not report_path.exists():
        assert time.monotonic() < deadline, f"no quarantine report at {report_path}"
        time.sleep(0.2)
    report = json.loads(report_path.read_text())
    assert "not a readable .xlsx workbook" in report["reason"]
    assert (empty_stack.var_dir / "quarantine" / "export.xlsx").read_bytes() == (
        b"this is not a workbook"
    )

    good = generate_demo_workbook(tmp_path / "good", items=40, depots=10, days=90, seed=7)
    empty_stack.drop(good.path)
    empty_stack.wait_for_total(good.items)


def test_ctrl_c_while_starting_stops_every_child(tmp_path: Path):
    env = {
        **os.environ,
        "NOVA_VAR_DIR": str(tmp_path / "var"),
        "NOVA_NATS__URL": f"nats://127.0.0.1:{free_port()}",
        "NOVA_API__PORT": str(free_port()),
        "NOVA_INGESTOR__METRICS_PORT": str(free_port()),
    }
    process = subprocess.Popen(
        [NOVA, "up", "--no-forecast"],
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    assert "starting" in first
    # nats-server is up and all three services are started, still importing. Waited for, not
    # assumed after a fixed second: on a loaded machine that second may end before nats-server
    # or a service is started, or while one is being started.
    var_dir = tmp_path / "var"
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    while _services_started(var_dir) != SERVICES:
        assert process.poll() is None, process.communicate(timeout=60)[0]
        assert time.monotonic() < deadline, f"services started: {_services_started(var_dir)}"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == 130, rest
    assert "interrupted while starting" in rest
    assert "  nats stopped" in rest
    assert _processes_with_var_dir(tmp_path / "var") == [], "children outlived nova up"
