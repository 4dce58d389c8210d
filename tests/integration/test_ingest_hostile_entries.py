"""Issue 13, items 3, 4 and 7 against the real ingestor on a real inbox: symlinks, a FIFO and
names a file system allows but text does not; the metrics listen on loopback only."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
import time
from pathlib import Path

import nats
import pyarrow.parquet as pq
import pytest

from tests.conftest import free_port, json_log_lines
from tests.integration.conftest import ingestor_process

pytestmark = pytest.mark.slow

HEADER = "DATA POSIÇÃO;DEPÓSITO;PRODUTO/SERVIÇO;SALDO"
BAD_NAME = b"relat\xf3rio\xff.csv"  # Latin-1 bytes from an old share, and one byte of nothing
BROKEN_BAD_NAME = b"quebrado\xfe.csv"
LONG_NAME = "estoque-" + "ç" * 115 + ".csv"  # 242 bytes: legal, but not with a hash before it


def _snapshot(tag: str, rows: int = 3) -> bytes:
    lines = [HEADER] + [f"31/10/2025;ALMOX-{tag};{n:06d};{n},00" for n in range(rows)]
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def _bronze_sources(var: Path) -> dict[str, int]:
    rows: dict[str, int] = {}
    for path in (var / "lake" / "bronze").rglob("*.parquet"):
        if not path.name.startswith("."):
            table = pq.read_table(path)
            name = table.column("_source_file")[0].as_py()
            rows[name] = rows.get(name, 0) + table.num_rows
    return rows


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on `port`, from /proc (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


async def _stream_payloads(url: str) -> list[bytes]:
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        info = await js.stream_info("NOVA")
        return [
            (await js.get_msg("NOVA", seq)).data
            for seq in range(info.state.first_seq, info.state.last_seq + 1)
        ]
    finally:
        await client.close()


def test_links_fifos_and_strange_names_are_ingested_or_quarantined_never_followed(
    tmp_path, nats_url
):
    var = tmp_path / "var"
    inbox = var / "inbox"
    inbox.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    elsewhere = outside / "elsewhere.csv"
    elsewhere.write_bytes(_snapshot("ELSEWHERE"))
    secret = outside / "shadow"
    secret.write_bytes(b"root:$6$secret-hash:19000:0:99999:7:::\n")
    secret.chmod(0o000)
    hidden_hashes = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (elsewhere, secret)}

    (inbox / "x.csv").symlink_to(elsewhere)
    (inbox / "shadow.csv").symlink_to(secret)
    os.mkfifo(inbox / "pipe.csv")
    Path(os.fsdecode(bytes(inbox) + b"/" + BAD_NAME)).write_bytes(_snapshot("BAD"))
    Path(os.fsdecode(bytes(inbox) + b"/" + BROKEN_BAD_NAME)).write_bytes(b"no;header\n1;2\n")
    (inbox / LONG_NAME).write_bytes(_snapshot("LONG"))
    (inbox / "a..b.csv").write_bytes(_snapshot("DOTS"))

    log = tmp_path / "ingestor.log"
    port = free_port()
    with ingestor_process(var, nats_url, log, stable_seconds=0.3, metrics_port=port) as process:
        deadline = time.monotonic() + 30
        while any(os.scandir(inbox)) and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        assert not any(os.scandir(inbox)), log.read_text()[-3000:]

        # Item 7: the metrics answer on loopback only.
        assert _listening_addresses(port) == {"0100007F"}
        assert process.poll() is None
    assert process.returncode == 0, log.read_text()[-2000:]

    # Item 4: strange names are ingested under a readable, faithful name.
    assert _bronze_sources(var) == {
        "relat\\xf3rio\\xff.csv": 3,
        LONG_NAME: 3,
        "a..b.csv": 3,
    }
    archived = [os.fsencode(p.name) for p in (var / "archive").rglob("*") if p.is_file()]
    assert len(archived) == 3 and all(len(name) <= 255 for name in archived)
    assert any(name.endswith(b"-" + BAD_NAME) for name in archived)

    # Item 3: links and the FIFO are quarantined as themselves, their targets never read.
    quarantine = var / "quarantine"
    assert (quarantine / "x.csv").readlink() == elsewhere
    assert (quarantine / "shadow.csv").readlink() == secret
    assert stat.S_ISFIFO((quarantine / "pipe.csv").lstat().st_mode)
    reports = {
        p.name.removesuffix(".error.json"): json.loads(p.read_bytes().decode("utf-8"))
        for p in quarantine.glob("*.error.json")
    }
    expected = {"x.csv", "shadow.csv", "pipe.csv", os.fsdecode(BROKEN_BAD_NAME)}
    assert set(reports) == expected, "one report each, none empty, none repeated"
    for name in ("x.csv", "shadow.csv", "pipe.csv"):
        assert reports[name]["content_sha256"] is None
        assert "not a regular file" in reports[name]["reason"]
    broken = reports[os.fsdecode(BROKEN_BAD_NAME)]
    assert broken["file"] == "quebrado\\xfe.csv"
    assert bytes.fromhex(broken["file_name_hex"]) == BROKEN_BAD_NAME

    everything_written = log.read_text() + "".join(
        p.read_text() for p in quarantine.glob("*.error.json")
    )
    for digest in hidden_hashes:
        assert digest not in everything_written
    assert "ELSEWHERE" not in json.dumps(_bronze_sources(var))
    events = [e.get("event") for e in json_log_lines(log)]
    assert "file_failed" not in events

    # What the API reads: every event on the stream is UTF-8 JSON with a readable name.
    payloads = asyncio.run(_stream_payloads(nats_url))
    names = sorted(json.loads(p.decode("utf-8"))["source_name"] for p in payloads)
    assert names == sorted(
        [
            "relat\\xf3rio\\xff.csv",
            LONG_NAME,
            "a..b.csv",
            "quebrado\\xfe.csv",
            "x.csv",
            "shadow.csv",
            "pipe.csv",
        ]
    )
