"""Issue 13, item 2: slow writers against the real ingestor on a real inbox.

A writer that holds the file open and pauses longer than `stable_seconds` between lines must
not have its file read until it closes it. A writer that reopens the file per line, pausing
longer than `stable_seconds`, gives files that are complete each time they are looked at:
those may be ingested in fragments, but no line is ever lost or read twice, and every archived
file still has the content its name's hash says.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from urllib.request import urlopen

import pyarrow.parquet as pq
import pytest

from tests.conftest import free_port, json_log_lines
from tests.integration.conftest import ingestor_process, wait_while_running

pytestmark = pytest.mark.slow

HEADER = "DATA POSIÇÃO;DEPÓSITO;PRODUTO/SERVIÇO;SALDO\r\n".encode("cp1252")
HELD_LINES, HELD_PAUSE = 6, 1.5
REOPENED_LINES, REOPENED_PAUSE = 4, 2.5


def _line(tag: str, n: int) -> bytes:
    return f"31/10/2025;ALMOX-{tag};{n:06d};{n * 3},{n % 100:02d}\r\n".encode("cp1252")


def _bronze_items(var: Path) -> dict[str, list[str]]:
    """Source file name -> item codes, over every bronze object of stock_on_hand."""
    found: dict[str, list[str]] = {}
    for path in (var / "lake" / "bronze" / "stock_on_hand").rglob("*.parquet"):
        if not path.name.startswith("."):
            table = pq.read_table(path)
            name = table.column("_source_file")[0].as_py()
            found.setdefault(name, []).extend(table.column("item_code").to_pylist())
    return found


def _hold_open_and_append(path: Path) -> None:
    with path.open("wb") as target:
        target.write(HEADER)
        for n in range(HELD_LINES):
            target.write(_line("H", n))
            target.flush()
            time.sleep(HELD_PAUSE)


def _reopen_per_line(path: Path) -> None:
    for n in range(REOPENED_LINES):
        with path.open("ab") as target:
            target.write((HEADER if n == 0 else b"") + _line("R", n))
        time.sleep(REOPENED_PAUSE)


def test_slow_writers_lose_nothing_and_nothing_is_read_twice(tmp_path, nats_url):
    var = tmp_path / "var"
    inbox = var / "inbox"
    inbox.mkdir(parents=True)
    log = tmp_path / "ingestor.log"
    held, reopened = inbox / "held-open.csv", inbox / "reopened.csv"
    port = free_port()
    with ingestor_process(var, nats_url, log, stable_seconds=1.0, metrics_port=port) as process:
        wait_while_running(
            lambda: any(e.get("event") == "ingestor_started" for e in json_log_lines(log)),
            process,
            log,
        )
        writers = [
            threading.Thread(target=_hold_open_and_append, args=(held,)),
            threading.Thread(target=_reopen_per_line, args=(reopened,)),
        ]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        wait_while_running(lambda: not any(inbox.iterdir()), process, log)

        bronze = _bronze_items(var)
        # Held open: read once, whole, after the writer closed it.
        assert bronze["held-open.csv"] == [f"{n:06d}" for n in range(HELD_LINES)]
        # Reopened per line: each line once, in bronze or in a quarantined fragment.
        quarantine = var / "quarantine"
        fragments = sorted(p for p in quarantine.glob("reopened*.csv"))
        in_quarantine = [
            line.split(";")[2]
            for p in fragments
            for line in p.read_bytes().decode("cp1252").splitlines()
            if line.startswith("31/10/2025")
        ]
        assert sorted(bronze.get("reopened.csv", []) + in_quarantine) == [
            f"{n:06d}" for n in range(REOPENED_LINES)
        ]
        for fragment in fragments:
            assert fragment.with_name(fragment.name + ".error.json").is_file()
        # Every archive still holds what its name's hash says was read.
        archived = [p for p in (var / "archive").rglob("*") if p.is_file()]
        assert archived
        for path in archived:
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name.split("-")[0]

        events = [e.get("event") for e in json_log_lines(log)]
        assert "file_open_for_writing" in events, "the wait is logged"
        assert "file_written_after_archiving" not in events
        metrics = urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert 'nova_ingest_deferred_total{reason="open_for_writing"} 1.0' in metrics
    assert process.returncode == 0, log.read_text()[-2000:]
