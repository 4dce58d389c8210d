"""The event catalogue as an AsyncAPI 3.0 document: every subject, who sends it, its payload.

Generated from the pydantic models the services actually publish, so the document cannot
describe a payload the code no longer sends; `tests/transformer/test_asyncapi.py` fails when the
committed `docs/asyncapi.json` is stale. Regenerate with:

    python -m services.transformer.asyncapi > docs/asyncapi.json
"""

from __future__ import annotations

import json
import sys

from faststream.nats import NatsBroker
from faststream.specification import AsyncAPI

from shared.events import (
    DLQ_SUBJECT_ROOT,
    BronzeIngested,
    GoldUpdated,
    IngestRejected,
    QualityFailed,
)

CATALOGUE = (
    (
        "bronze.ingested",
        "nova.v1.bronze.ingested.{dataset}",
        BronzeIngested,
        "Sent by the ingestor once a file's rows for one dataset are in bronze. Nats-Msg-Id is "
        "`<content sha256>.<dataset>` (a re-publish after a crash is dropped). Consumed by the "
        "transformer (durable pull consumer `transformer`).",
    ),
    (
        "ingest.rejected",
        "nova.v1.ingest.rejected.{dataset}",
        IngestRejected,
        "Sent by the ingestor when a file is quarantined; `dataset` is the contract it was "
        "checked against, or `unknown`. The file and its `.error.json` are the record.",
    ),
    (
        "gold.updated",
        "nova.v1.gold.updated",
        GoldUpdated,
        "Sent by the transformer after a build committed silver and gold: the tables and the "
        "Delta versions it wrote. Nats-Msg-Id is the build id. The API reloads on it.",
    ),
    (
        "quality.failed",
        "nova.v1.quality.failed",
        QualityFailed,
        "Sent by the transformer when an error-severity quality check failed: gold stays at "
        "its previous versions; names the checks, failing row counts, sample rows and the "
        "lake path of the build's HTML report.",
    ),
    (
        "dlq.bronze.ingested",
        DLQ_SUBJECT_ROOT + ".nova.v1.bronze.ingested.{dataset}",
        BronzeIngested,
        "Dead letters (stream NOVA_DLQ): a bronze event the transformer gave up on, with "
        "headers Nova-Original-Subject, Nova-Error, Nova-Deliveries, Nova-Failed-At. "
        "`nova dlq list|replay` shows and replays them.",
    ),
)


def asyncapi_document() -> dict[str, object]:
    broker = NatsBroker("nats://127.0.0.1:4222")
    for title, subject, model, description in CATALOGUE:
        broker.publisher(subject, schema=model, title=title, description=description)
    spec = AsyncAPI(
        broker,
        title="Nova Corrente data platform events",
        version="v1",
        description="Subjects of the NOVA JetStream stream (`nova.v1.>`) and its dead letters.",
    ).to_specification()
    return json.loads(spec.to_json())


def render() -> str:
    return json.dumps(asyncapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
