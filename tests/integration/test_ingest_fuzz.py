"""Throw a few hundred broken files (and some good ones) at the real ingestor process.

Every broken file must end in quarantine with a reason, every good one in the archive, none
may stay in the inbox or vanish, and the process must keep running throughout.
"""

from __future__ import annotations

import io
import json
import random
import time
import zipfile

import httpx
import pytest

from services.demo.erp_workbook import generate_demo_workbook
from tests.conftest import free_port
from tests.integration.conftest import ingestor_process

pytestmark = pytest.mark.slow

MAX_FILE_BYTES = 3 * 1024 * 1024
MAX_UNCOMPRESSED_BYTES = 8 * 1024 * 1024
CSV_HEADER = "DATA MOVIMENTO;DEPÓSITO;PRODUTO/SERVIÇO;TIPO MOVIMENTO;QUANTIDADE;DOCUMENTO"


def _good_csv(rng: random.Random, rows: int = 20) -> bytes:
    lines = [CSV_HEADER]
    for n in range(rows):
        quantity = f"{rng.randint(1, 9)}.{rng.randint(100, 999)},{rng.randint(0, 99):02d}"
        lines.append(
            f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/2025;ALMOX-BA;"
            f"{rng.randint(0, 999999):06d};SAÍDA;{quantity};D{rng.randint(0, 10**9)}-{n}"
        )
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (MAX_UNCOMPRESSED_BYTES + 1))
    return buffer.getvalue()


def _broken_files(rng: random.Random, workbook: bytes) -> list[tuple[str, bytes]]:
    """(name, content) pairs, every one of which the ingestor must refuse."""
    files: list[tuple[str, bytes]] = []
    for n in range(60):
        suffix = rng.choice([".xlsx", ".csv", ".json", ".txt"])
        files.append((f"random-{n}{suffix}", rng.randbytes(rng.randint(1, 5000))))
    for n in range(40):
        cut = rng.randint(1, len(workbook) - 1)
        files.append((f"truncated-{n}.xlsx", workbook[:cut]))
    for n, suffix in enumerate([".xlsx", ".csv", ".json", ".txt"]):
        files.append((f"empty-{n}{suffix}", b""))
    for n in range(20):
        files.append((f"header-only-{n}.csv", (CSV_HEADER + "\r\n" * (n % 3)).encode("cp1252")))
    for n in range(40):  # a valid file with one cell broken
        lines = _good_csv(rng).decode("cp1252").split("\r\n")
        row = rng.randint(1, len(lines) - 2)
        cells = lines[row].split(";")
        column = rng.choice([0, 4])  # a date or a number
        cells[column] = rng.choice(["31/02/2025", "abc", "1,2,3", "12/13/2025", "--", "1.23.4,5"])
        lines[row] = ";".join(cells)
        files.append((f"bad-cell-{n}.csv", "\r\n".join(lines).encode("cp1252")))
    for n in range(20):  # missing a required column
        lines = _good_csv(rng).decode("cp1252").split("\r\n")
        drop = rng.choice([0, 1, 2, 4])
        lines = [";".join(c for i, c in enumerate(line.split(";")) if i != drop) for line in lines]
        files.append((f"missing-column-{n}.csv", "\r\n".join(lines).encode("cp1252")))
    for n in range(20):
        body = _good_csv(rng).replace(b"ALMOX", b"\x81\x8d\x90" + rng.randbytes(2) + b"\x9d")
        files.append((f"undecodable-{n}.csv", body))
    for n in range(20):
        document = json.dumps({"data": [{"data": "01/01/2025", "valor": "11.75"}] * 5})
        files.append(
            (f"truncated-{n}.json", document[: rng.randint(1, len(document) - 1)].encode())
        )
    for n in range(20):
        shape = rng.choice(
            [{"data": [{"x": 1}]}, {"value": []}, [1, 2, 3], {"hourly": {"time": [1], "x": []}}]
        )
        files.append((f"wrong-shape-{n}.json", json.dumps(shape).encode()))
    files.append(("bomb.xlsx", _zip_bomb()))
    files.append(("huge.csv", _good_csv(rng, rows=10) + b"x" * MAX_FILE_BYTES))
    for n in range(10):
        files.append((f"sub\\..\\relatorio{n}.csv", _good_csv(rng)))
        files.append((f"pasta\\sub{n}.csv", _good_csv(rng)))
    for n in range(10):
        files.append((f"binary-{n}.csv", b"DATA;X\r\n\x00\x01\x02" + rng.randbytes(100)))
    return files


def test_a_few_hundred_broken_files_are_all_quarantined_and_the_ingestor_keeps_running(
    tmp_path, nats_url
):
    rng = random.Random(20251126)
    workbook = generate_demo_workbook(tmp_path / "demo", seed=9, items=30, depots=8, days=40)
    broken = _broken_files(rng, workbook.path.read_bytes())
    good = [(f"good-{n}.csv", _good_csv(rng)) for n in range(15)]
    var = tmp_path / "var"
    inbox, staging = var / "inbox", tmp_path / "staging"
    inbox.mkdir(parents=True)
    staging.mkdir()
    metrics_port = free_port()
    log_path = tmp_path / "ingestor.log"
    with ingestor_process(
        var,
        nats_url,
        log_path,
        stable_seconds=0.2,
        metrics_port=metrics_port,
        max_file_bytes=MAX_FILE_BYTES,
        max_uncompressed_bytes=MAX_UNCOMPRESSED_BYTES,
    ) as process:
        everything = broken + good
        rng.shuffle(everything)
        for name, content in everything:
            (staging / name).write_bytes(content)
            (staging / name).replace(inbox / name)  # whole files only, like a finished copy
        deadline = time.monotonic() + 120
        while any(inbox.iterdir()) and time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()[-3000:]
            time.sleep(0.3)
        left = sorted(p.name for p in inbox.iterdir())
        assert not left, f"left in the inbox: {left[:10]}"
        assert process.poll() is None, "the ingestor died"
        # The ingestor counts a quarantined file just after moving it out of the inbox: scrape
        # until the last one is counted (a loaded machine can hold it between the two steps).
        deadline = time.monotonic() + 30
        while True:
            metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
            if _quarantined_total(metrics) >= len(broken) or time.monotonic() > deadline:
                break
            time.sleep(0.2)

    quarantine = var / "quarantine"
    reports = {p.name.removesuffix(".error.json"): p for p in quarantine.glob("*.error.json")}
    quarantined = {p.name for p in quarantine.iterdir() if p.is_file()} - {
        p.name for p in reports.values()
    }
    archived = {p.name.split("-", 1)[1] for p in (var / "archive").rglob("*") if p.is_file()}
    assert quarantined == {name for name, _ in broken}
    assert archived == {name for name, _ in good}
    for name in quarantined:
        report = json.loads(reports[name].read_text())
        assert report["reason"], name
        assert report["file"] == name
    samples = [line for line in metrics.splitlines() if line.startswith("nova_ingest_")]
    assert f"nova_ingest_quarantine_files {float(len(broken))}" in samples
    assert _quarantined_total(metrics) == len(broken)


def _quarantined_total(metrics: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("nova_ingest_files_total") and 'outcome="quarantined"' in line
    )
