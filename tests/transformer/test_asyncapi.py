"""The committed AsyncAPI document describes exactly the events the code sends."""

from __future__ import annotations

import json

from services.transformer.asyncapi import CATALOGUE, asyncapi_document, render
from tests.conftest import REPO_ROOT


def test_committed_asyncapi_document_is_current():
    committed = (REPO_ROOT / "docs" / "asyncapi.json").read_text()
    assert committed == render(), (
        "docs/asyncapi.json is stale: python -m services.transformer.asyncapi > docs/asyncapi.json"
    )


def test_every_subject_has_a_channel_and_a_payload_schema():
    document = asyncapi_document()
    addresses = {c["address"] for c in document["channels"].values()}
    assert addresses == {subject for _, subject, _, _ in CATALOGUE}
    schemas = document["components"]["schemas"]
    for _, _, model, _ in CATALOGUE:
        assert model.__name__ in schemas
        assert set(model.model_fields) <= set(schemas[model.__name__]["properties"])
    json.dumps(document)  # serialisable as is
