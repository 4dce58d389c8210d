"""The ingest ledger: what has been done with each distinct file content, surviving restarts.

Keyed by the SHA-256 of the content. `started` fixes the ingestion time (hence the bronze
paths) before anything is written, so a retry after a crash rewrites the same objects instead of
adding new ones; `published` makes a re-dropped identical file a no-op for good, long after
JetStream's duplicate window has passed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyDeletedError, KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict

from shared.broker import until_settled

LedgerStatus = Literal["started", "published"]


class LedgerEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    content_sha256: str
    status: LedgerStatus
    ingested_at: datetime
    correlation_id: str
    source_name: str
    bronze_paths: dict[str, str] = {}  # dataset -> bronze object
    event_ids: dict[str, str] = {}  # dataset -> event_id published


class Ledger(Protocol):
    async def get(self, content_sha256: str) -> LedgerEntry | None: ...

    async def put(self, entry: LedgerEntry) -> None: ...


class JetStreamLedger:
    """A JetStream key-value bucket: replicated and persisted like the event stream itself."""

    def __init__(self, bucket: KeyValue) -> None:
        self._bucket = bucket

    @classmethod
    async def open(cls, js: JetStreamContext, bucket: str, replicas: int = 1) -> JetStreamLedger:
        config = KeyValueConfig(
            bucket=bucket,
            description="Nova ingest ledger: one entry per distinct file content (SHA-256).",
            history=1,
            storage=StorageType.FILE,
            replicas=replicas,
        )
        # Idempotent: creating a bucket that exists with the same config returns it.
        return cls(await until_settled(lambda: js.create_key_value(config), f"key-value {bucket}"))

    async def get(self, content_sha256: str) -> LedgerEntry | None:
        try:
            entry = await self._bucket.get(content_sha256)
        except (KeyNotFoundError, KeyDeletedError):
            return None
        return None if entry.value is None else LedgerEntry.model_validate_json(entry.value)

    async def put(self, entry: LedgerEntry) -> None:
        await self._bucket.put(entry.content_sha256, entry.model_dump_json().encode())
