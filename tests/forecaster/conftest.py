"""Fixtures of the forecaster tests: a small demo gold lake."""

from __future__ import annotations

import asyncio

import pytest

from services.demo.sources import generate_demo_sources
from services.ingestor.service import IngestService
from services.transformer.builds import Builder
from shared.settings import NovaSettings
from shared.storage import Lake


class _Publisher:
    def __init__(self):
        self.events = []

    async def publish(self, event, message_id):
        self.events.append(event)


class _Ledger:
    def __init__(self):
        self.entries = {}

    async def get(self, key):
        return self.entries.get(key)

    async def put(self, entry):
        self.entries[entry.content_sha256] = entry


@pytest.fixture(scope="module")
def demo_var(tmp_path_factory):
    """A var dir whose lake holds gold built from small demo data (ingestor + transformer)."""
    var = tmp_path_factory.mktemp("forecast") / "var"
    settings = NovaSettings(var_dir=var)
    inbox = settings.ingestor.inbox_dir
    assert inbox is not None
    inbox.mkdir(parents=True)
    sources = generate_demo_sources(var / "demo", seed=5, items=40, depots=12, days=420)
    lake = Lake.from_settings(settings.storage)
    publisher = _Publisher()
    service = IngestService(lake, publisher, _Ledger(), settings.ingestor)

    async def ingest():
        for path in sources.paths:
            target = inbox / path.name
            path.replace(target)
            await service.process(target)

    asyncio.run(ingest())
    builder = Builder(lake)
    for event in publisher.events:
        if getattr(event, "bronze_path", None):
            builder.apply_bronze_event(event)
    return var
