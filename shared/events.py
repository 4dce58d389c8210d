"""Event models exchanged over NATS JetStream.

Subjects carry a schema version (`nova.v1.`): a breaking payload change gets `nova.v2.` and
both can run side by side while consumers migrate.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

SUBJECT_ROOT = "nova.v1"
ALL_SUBJECTS = f"{SUBJECT_ROOT}.>"
BRONZE_INGESTED_ANY = f"{SUBJECT_ROOT}.bronze.ingested.*"

# Dead letters live outside `nova.v1.>` because two JetStream streams cannot share subjects; the
# original subject follows the prefix, so a dead letter says where it came from by its name.
DLQ_SUBJECT_ROOT = "nova.dlq.v1"
DLQ_ALL_SUBJECTS = f"{DLQ_SUBJECT_ROOT}.>"
DLQ_HEADER_ORIGINAL_SUBJECT = "Nova-Original-Subject"
DLQ_HEADER_ORIGINAL_MSG_ID = "Nova-Original-Msg-Id"
DLQ_HEADER_ORIGINAL_STREAM_SEQ = "Nova-Original-Stream-Seq"
DLQ_HEADER_ERROR = "Nova-Error"
DLQ_HEADER_DELIVERIES = "Nova-Deliveries"
DLQ_HEADER_FAILED_AT = "Nova-Failed-At"


def dlq_subject(subject: str) -> str:
    """Where a dead letter of an event published on `subject` is kept."""
    return f"{DLQ_SUBJECT_ROOT}.{subject}"


def new_correlation_id() -> str:
    return uuid.uuid4().hex


class Event(BaseModel):
    """Fields every event carries; `correlation_id` follows one file through all services."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    subject_template: ClassVar[str]

    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    producer: str
    correlation_id: str

    @property
    def subject(self) -> str:
        return self.subject_template.format(**self.model_dump())

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class BronzeIngested(Event):
    """A source file passed its contract and its rows are in bronze."""

    subject_template: ClassVar[str] = SUBJECT_ROOT + ".bronze.ingested.{dataset}"

    dataset: str
    bronze_path: str = Field(description="Lake-relative path of the bronze Parquet object.")
    content_sha256: str
    source_name: str
    row_count: int = Field(ge=0)
    extra_columns: list[str] = Field(
        default_factory=list,
        description="Columns the contract does not know, kept in bronze as text (schema drift).",
    )


class TableVersion(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    table: str = Field(description="Layer-qualified name, e.g. gold.dim_item.")
    version: int = Field(ge=0)
    row_count: int = Field(ge=0)


class GoldUpdated(Event):
    """A transformer build committed new table versions."""

    subject_template: ClassVar[str] = SUBJECT_ROOT + ".gold.updated"

    build_id: str
    tables: list[TableVersion]
    source_events: list[str] = Field(description="event_id of each bronze event the build read.")


class IngestRejected(Event):
    """A source file broke its contract and was quarantined with the reason."""

    subject_template: ClassVar[str] = SUBJECT_ROOT + ".ingest.rejected.{dataset}"

    dataset: str = Field(description="The contract it was checked against, or 'unknown'.")
    source_name: str
    content_sha256: str
    reason: str
    column: str | None = None
    row: int | None = None


class QualityFailure(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    check: str
    table: str
    severity: str
    failing_rows: int
    message: str
    sample: list[dict[str, Any]] = Field(default_factory=list, description="Up to 5 rows.")


class QualityFailed(Event):
    """A build's gold tables failed an error-severity check; the previous versions stay live."""

    subject_template: ClassVar[str] = SUBJECT_ROOT + ".quality.failed"

    build_id: str
    failures: list[QualityFailure]
    report_path: str | None = Field(None, description="Lake path of the build's HTML report.")
    source_events: list[str] = Field(default_factory=list)


class ForecastPublished(Event):
    """A forecast run committed forecasts, accuracy and inventory policy (manifest last)."""

    subject_template: ClassVar[str] = SUBJECT_ROOT + ".forecast.published"

    run_id: str
    tables: list[TableVersion]
    series: int = Field(ge=0)
    items_with_policy: int = Field(ge=0)
    duration_seconds: float = Field(ge=0)
    selected_models: dict[str, int] = Field(default_factory=dict)
