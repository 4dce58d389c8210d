"""Every real file in ../shared/data dropped into the inbox of the real ingestor process.

ERP workbook and the four external-source files must land in their datasets with the row counts
the data README states; the benchmark files have no contract and must be quarantined with a
reason that names the candidates, as must the README (an unsupported type).
"""

from __future__ import annotations

import json
import shutil
import time

import pyarrow.parquet as pq
import pytest

from tests.conftest import REAL_DATA
from tests.integration.conftest import ingestor_process

pytestmark = pytest.mark.slow

EXPECTED_ROWS = {
    "erp_requisitions": 4207,
    "erp_cost_summary": 42,
    "erp_sites": 267,
    "weather_hourly": 35064,
    "selic": 3968,
    "ptax_usd": 13573,
    "ipca": 130,
}
NO_CONTRACT = {"carparts_long.csv", "published_benchmarks.csv", "README.md"}


def test_every_real_file_is_ingested_or_quarantined_with_a_reason(tmp_path, nats_url):
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data folder not present at {REAL_DATA} (it lives outside the repo)")
    real_files = sorted(p for p in REAL_DATA.rglob("*") if p.is_file())
    var = tmp_path / "var"
    inbox = var / "inbox"
    inbox.mkdir(parents=True)
    log = tmp_path / "ingestor.log"
    with ingestor_process(var, nats_url, log, stable_seconds=0.2) as process:
        staging = tmp_path / "staging"
        staging.mkdir()
        for path in real_files:
            shutil.copy(path, staging / path.name)
            (staging / path.name).replace(inbox / path.name)
        deadline = time.monotonic() + 120
        while any(inbox.iterdir()):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            assert process.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)

    rows: dict[str, int] = {}
    extras: dict[str, set[str]] = {}
    for path in (var / "lake" / "bronze").rglob("*.parquet"):
        table = pq.read_table(path)
        dataset = path.relative_to(var / "lake" / "bronze").parts[0]
        rows[dataset] = rows.get(dataset, 0) + table.num_rows
        extras[dataset] = {n for n in table.column_names if n.startswith("extra_")}
    assert rows == EXPECTED_ROWS
    assert all(not names for names in extras.values()), extras

    requisitions = pq.read_table(next((var / "lake" / "bronze" / "erp_requisitions").rglob("*")))
    assert len(set(requisitions.column("item_code").to_pylist())) == 879
    assert "010825" in requisitions.column("item_code").to_pylist(), "leading zeros kept"

    quarantine = var / "quarantine"
    quarantined = {p.name for p in quarantine.iterdir() if not p.name.endswith(".error.json")}
    assert quarantined == NO_CONTRACT
    for name in NO_CONTRACT:
        report = json.loads((quarantine / f"{name}.error.json").read_text())
        expected = "unsupported file type" if name.endswith(".md") else "no header row"
        assert expected in report["reason"], report
    archived = {p.name.split("-", 1)[1] for p in (var / "archive").rglob("*") if p.is_file()}
    assert archived == {p.name for p in real_files} - NO_CONTRACT
