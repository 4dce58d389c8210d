"""The real ingestor process notices files however they arrive: already there at start, copied
slowly, moved in with `mv`, dropped into a dataset folder, with inotify or by polling."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.integration.conftest import ingestor_process, wait_while_running

pytestmark = pytest.mark.slow

HEADER = "DATA POSIÇÃO;DEPÓSITO;PRODUTO/SERVIÇO;SALDO"


def _snapshot(rows: int, tag: str) -> bytes:
    lines = [HEADER] + [
        f"31/10/2025;ALMOX-{tag};{n:06d};{n * 3},{n % 100:02d}" for n in range(rows)
    ]
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def _bronze_rows(var: Path, dataset: str) -> dict[str, int]:
    """Source file name -> rows, over every bronze object of the dataset."""
    rows: dict[str, int] = {}
    for path in (var / "lake" / "bronze" / dataset).rglob("*.parquet"):
        if path.name.startswith("."):
            continue  # a staging file still being written; readers never see those
        table = pq.read_table(path)
        name = table.column("_source_file")[0].as_py()
        rows[name] = rows.get(name, 0) + table.num_rows
    return rows


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
def test_files_arriving_every_way_are_each_ingested_once_and_whole(tmp_path, nats_url, polling):
    var = tmp_path / "var"
    inbox = var / "inbox"
    inbox.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (inbox / "before-start.csv").write_bytes(_snapshot(50, "A"))
    log = tmp_path / "ingestor.log"
    with ingestor_process(
        var,
        nats_url,
        log,
        # Well above the slow copy's pause below: a loaded machine can stretch that pause (a
        # late wake-up of this process), and a pause past stable_seconds hands over half a file.
        stable_seconds=2.0,
        polling="true" if polling else "false",
        poll_interval_seconds=0.3,
    ) as process:
        wait_while_running(
            lambda: "before-start.csv" in _bronze_rows(var, "stock_on_hand"), process, log
        )

        # A slow copy: half now, the rest after a pause shorter than stable_seconds.
        content = _snapshot(4000, "B")
        with (inbox / "slow-copy.csv").open("wb") as target:
            target.write(content[: len(content) // 2])
            target.flush()
            time.sleep(0.6)
            target.write(content[len(content) // 2 :])

        (outside / "moved.csv").write_bytes(_snapshot(30, "C"))
        (outside / "moved.csv").rename(inbox / "moved.csv")  # `mv`: no close-write event

        (inbox / "stock_on_hand").mkdir()
        (inbox / "stock_on_hand" / "in-dataset-folder.csv").write_bytes(_snapshot(20, "D"))
        (inbox / "~$lock.csv").write_bytes(b"owner file of an open workbook")
        (inbox / "partial.csv.part").write_bytes(b"still downloading")

        expected = {"before-start.csv": 50, "slow-copy.csv": 4000, "moved.csv": 30}
        expected["in-dataset-folder.csv"] = 20
        wait_while_running(lambda: _bronze_rows(var, "stock_on_hand") == expected, process, log)
        time.sleep(2.5)  # anything else would have been picked up by now
        assert _bronze_rows(var, "stock_on_hand") == expected
        assert not (var / "quarantine").exists() or not any((var / "quarantine").iterdir())
        left = sorted(p.name for p in inbox.rglob("*") if p.is_file())
        assert left == ["partial.csv.part", "~$lock.csv"], "temporary names are left alone"
    assert process.returncode == 0, log.read_text()[-2000:]
