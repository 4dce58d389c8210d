"""A small demo lake built by the real ingestor and transformer, for tests that read gold."""

from __future__ import annotations

import asyncio
from pathlib import Path

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


def build_demo_gold(
    var: Path, *, seed: int = 5, items: int = 40, depots: int = 12, days: int = 420
) -> NovaSettings:
    """Generate demo exports, ingest them and build silver and gold under `var`."""
    settings = NovaSettings(var_dir=var)
    inbox = settings.ingestor.inbox_dir
    assert inbox is not None
    inbox.mkdir(parents=True)
    sources = generate_demo_sources(var / "demo", seed=seed, items=items, depots=depots, days=days)
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
    return settings
