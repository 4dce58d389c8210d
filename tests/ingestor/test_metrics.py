"""Ingest metrics: what each outcome counts, read back from the service's own registry."""

import io
from urllib.request import urlopen

import pytest
from openpyxl import Workbook

from services.ingestor.main import serve_metrics
from services.ingestor.metrics import IngestMetrics, count_quarantined
from shared.settings import IngestorSettings
from tests.conftest import free_port
from tests.ingestor.fakes import IngestEnv

HEADER = ["DEPÓSITO", "PRODUTO/SERVIÇO", "MATERIAL", "FAMÍLIA", "QUANTIDADE", "DATA SOLICITADO"]
ROWS = [
    ["D1", "010825", "CABO", "MATERIAL ELETRICO", 10, None],
    ["D2", "0134", "FRETE", "SERVIÇOS TOMADOS", 1, None],
]


def workbook_bytes(rows):
    buffer = io.BytesIO()
    workbook = Workbook()
    workbook.active.append(HEADER)
    for row in rows:
        workbook.active.append(row)
    workbook.save(buffer)
    return buffer.getvalue()


@pytest.fixture
def env(tmp_path):
    env = IngestEnv(tmp_path)
    env.metrics.watch_quarantine(env.quarantine)
    return env


def sample(env, name, **labels):
    """A sample's value; a labelled series never touched reads as 0."""
    return env.metrics.registry.get_sample_value(name, labels) or 0.0


def files(env, dataset, outcome):
    return sample(env, "nova_ingest_files_total", dataset=dataset, outcome=outcome)


def durations(env, outcome):
    return sample(env, "nova_ingest_duration_seconds_count", outcome=outcome)


def test_each_outcome_moves_its_counters(env):
    good = workbook_bytes(ROWS)
    csv = (
        "DATA MOVIMENTO;DEPÓSITO;PRODUTO;TIPO MOVIMENTO;QUANTIDADE;DOCUMENTO\n"
        + "03/02/2025;ALMOX-BA;000123;ENTRADA;1;NF-1\n" * 5
    ).encode()

    assert env.ingest("a.xlsx", good).status == "ingested"
    assert env.ingest("m.csv", csv).status == "ingested"
    assert files(env, "erp_requisitions", "ingested") == 1
    assert files(env, "stock_movements", "ingested") == 1
    assert sample(env, "nova_ingest_rows_total", dataset="erp_requisitions") == len(ROWS)
    assert sample(env, "nova_ingest_rows_total", dataset="stock_movements") == 5
    assert durations(env, "ingested") == 2
    assert sample(env, "nova_ingest_duration_seconds_sum", outcome="ingested") > 0

    assert env.ingest("a-again.xlsx", good).status == "duplicate"
    assert files(env, "erp_requisitions", "duplicate") == 1
    assert files(env, "erp_requisitions", "ingested") == 1  # unchanged
    assert sample(env, "nova_ingest_rows_total", dataset="erp_requisitions") == len(ROWS)
    assert durations(env, "duplicate") == 1

    bad = workbook_bytes([*ROWS, ["D3", "0999", "LUVA", "EPI", "muitas", None]])
    assert env.ingest("erp_requisitions/bad.xlsx", bad).status == "quarantined"
    assert env.ingest("notes.pdf", b"%PDF").status == "quarantined"
    assert files(env, "erp_requisitions", "quarantined") == 1
    assert files(env, "unknown", "quarantined") == 1
    assert durations(env, "quarantined") == 2
    assert durations(env, "ingested") == 2  # unchanged by the others


def test_quarantine_gauge_counts_the_folder_when_scraped(env):
    gauge = "nova_ingest_quarantine_files"
    assert env.metrics.registry.get_sample_value(gauge) == 0  # the folder does not exist yet
    first = env.ingest("one.pdf", b"1")
    env.ingest("two.pdf", b"2")
    assert env.metrics.registry.get_sample_value(gauge) == 2  # the .error.json do not count
    (env.quarantine / ".DS_Store").write_bytes(b"")  # nor hidden files
    assert env.metrics.registry.get_sample_value(gauge) == 2
    first.moved_to.unlink()  # an operator deals with one by hand
    assert env.metrics.registry.get_sample_value(gauge) == 1


def test_count_quarantined(tmp_path):
    assert count_quarantined(tmp_path / "missing") == 0
    (tmp_path / "a.xlsx").write_bytes(b"")
    (tmp_path / "a.xlsx.error.json").write_text("{}")
    (tmp_path / ".hidden").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    assert count_quarantined(tmp_path) == 1


def test_each_service_instance_has_its_own_registry():
    one, two = IngestMetrics(), IngestMetrics()
    one.files.labels("x", "ingested").inc()
    assert (
        one.registry.get_sample_value(
            "nova_ingest_files_total", {"dataset": "x", "outcome": "ingested"}
        )
        == 1
    )
    assert (
        two.registry.get_sample_value(
            "nova_ingest_files_total", {"dataset": "x", "outcome": "ingested"}
        )
        is None
    )


def test_source_bytes_are_labelled_by_what_the_label_says(env):
    content = workbook_bytes(ROWS)
    env.ingest("a.xlsx", content)
    samples = [
        s
        for family in env.metrics.registry.collect()
        for s in family.samples
        if s.name == "nova_ingest_bytes_total"
    ]
    assert sum(s.value for s in samples) == len(content)
    for s in samples:
        # either the label is a dataset and holds one, or it is renamed to what it holds
        assert s.labels in ({"dataset": "erp_requisitions"}, {"format": "xlsx"}), s.labels


def test_metrics_listen_on_loopback_by_default():
    """Issue 13, item 7: the ingestor's metrics bound 0.0.0.0 while the banner said 127.0.0.1."""
    settings = IngestorSettings(metrics_port=free_port())
    assert settings.metrics_host == "127.0.0.1"
    server = serve_metrics(IngestMetrics(), settings)
    try:
        assert server.server_address[:2] == ("127.0.0.1", settings.metrics_port)
        with urlopen(f"http://127.0.0.1:{settings.metrics_port}/metrics", timeout=5) as answer:
            assert b"nova_ingest_files" in answer.read()
    finally:
        server.shutdown()
        server.server_close()
