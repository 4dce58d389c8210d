"""Event models: versioned subjects, JSON round trip, common fields, strictness."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.events import (
    ALL_SUBJECTS,
    BRONZE_INGESTED_ANY,
    BronzeIngested,
    Event,
    GoldUpdated,
    IngestRejected,
    TableVersion,
    new_correlation_id,
)


def bronze_event(**overrides):
    fields = {
        "producer": "ingestor",
        "correlation_id": new_correlation_id(),
        "dataset": "erp_requisitions",
        "bronze_path": "bronze/erp_requisitions/year=2025/month=01/day=02/abc.parquet",
        "content_sha256": "ab" * 32,
        "source_name": "dadosSuprimentos.xlsx",
        "row_count": 12,
    }
    return BronzeIngested(**{**fields, **overrides})


def gold_event():
    return GoldUpdated(
        producer="transformer",
        correlation_id=new_correlation_id(),
        build_id="b" * 32,
        tables=[
            TableVersion(table="silver.erp_requisitions", version=3, row_count=120),
            TableVersion(table="gold.dim_item", version=7, row_count=40),
        ],
        source_events=["e1", "e2"],
    )


def rejected_event():
    return IngestRejected(
        producer="ingestor",
        correlation_id=new_correlation_id(),
        dataset="unknown",
        source_name="broken.xlsx",
        content_sha256="cd" * 32,
        reason="not a number: 'abc' (column 'quantity', row 7)",
        column="quantity",
        row=7,
    )


ALL_EVENTS = [bronze_event, gold_event, rejected_event]


def test_subjects_are_versioned_and_name_the_dataset():
    assert bronze_event().subject == "nova.v1.bronze.ingested.erp_requisitions"
    assert bronze_event(dataset="erp_stock").subject == "nova.v1.bronze.ingested.erp_stock"
    assert rejected_event().subject == "nova.v1.ingest.rejected.unknown"
    assert gold_event().subject == "nova.v1.gold.updated"


def test_every_subject_is_inside_the_stream_wildcard():
    assert ALL_SUBJECTS == "nova.v1.>"
    for make in ALL_EVENTS:
        assert make().subject.startswith("nova.v1.")
    prefix = BRONZE_INGESTED_ANY.removesuffix("*")
    assert bronze_event().subject.startswith(prefix)
    assert bronze_event().subject.count(".") == BRONZE_INGESTED_ANY.count(".")


@pytest.mark.parametrize("make", ALL_EVENTS, ids=lambda f: f.__name__)
def test_json_round_trip_gives_an_equal_event(make):
    event = make()
    raw = event.to_bytes()
    assert isinstance(raw, bytes)
    back = type(event).model_validate_json(raw)
    assert back == event
    assert back.subject == event.subject
    assert back.occurred_at.tzinfo is not None


@pytest.mark.parametrize("make", ALL_EVENTS, ids=lambda f: f.__name__)
def test_every_event_carries_the_common_fields(make):
    event = make()
    assert isinstance(event, Event)
    assert event.event_id and isinstance(event.event_id, str)
    assert event.producer
    assert event.correlation_id
    assert isinstance(event.occurred_at, datetime)
    assert event.occurred_at.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - event.occurred_at).total_seconds()) < 60


def test_event_ids_are_unique_and_correlation_is_kept():
    correlation_id = new_correlation_id()
    first = bronze_event(correlation_id=correlation_id)
    second = bronze_event(correlation_id=correlation_id)
    assert first.event_id != second.event_id
    assert first.correlation_id == second.correlation_id == correlation_id
    assert new_correlation_id() != new_correlation_id()


@pytest.mark.parametrize("make", ALL_EVENTS, ids=lambda f: f.__name__)
def test_extra_fields_are_rejected(make):
    event = make()
    payload = event.model_dump(mode="json")
    payload["unexpected"] = 1
    with pytest.raises(ValidationError):
        type(event).model_validate(payload)


def test_missing_common_fields_are_rejected():
    with pytest.raises(ValidationError):
        BronzeIngested(
            dataset="erp_requisitions",
            bronze_path="bronze/x.parquet",
            content_sha256="x",
            source_name="x.xlsx",
            row_count=1,
        )


def test_nested_table_version_rejects_extra_and_negative_values():
    with pytest.raises(ValidationError):
        TableVersion(table="gold.dim_item", version=1, row_count=1, extra=True)
    with pytest.raises(ValidationError):
        TableVersion(table="gold.dim_item", version=-1, row_count=1)
    with pytest.raises(ValidationError):
        bronze_event(row_count=-1)


def test_events_are_immutable():
    event = bronze_event()
    with pytest.raises(ValidationError):
        event.row_count = 99
