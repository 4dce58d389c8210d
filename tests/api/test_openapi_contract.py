"""Schemathesis against the API, in process, with every check it has: status codes, media
types, response schemas and headers the document declares, problem details, 405 with `Allow`
for undeclared methods, and that a key is really required where the document says so (issue
13, item 9).

The document does not depend on gold (`create_app` reads nothing before it starts), so it is
loaded at import, as schemathesis's pytest integration wants; requests go to the app over the
demo gold that the fixture starts."""

from __future__ import annotations

from typing import Any

import pyarrow.fs as pafs
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from services.api.app import create_app
from shared.settings import ApiSettings, NovaSettings
from shared.storage import Lake

pytestmark = pytest.mark.slow  # ~11 s: every operation through every phase

KEY = "contract-test-key"
SETTINGS = ApiSettings(version_check_seconds=3600, max_date_range_days=800, keys=KEY)
NO_LAKE = Lake(pafs.LocalFileSystem(), "/nonexistent", "/nonexistent", {})


class Target:
    """The app under test, set by the fixture. Lifespan messages are answered here: the
    fixture runs the app's own lifespan once, schemathesis would start it again per call."""

    app: Any = None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"].rsplit(".", 1)[-1]
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        await self.app(scope, receive, send)


TARGET = Target()
schema = schemathesis.openapi.from_dict(create_app(SETTINGS, NO_LAKE).openapi())
schema.app = TARGET


@pytest.fixture(scope="module")
def target(demo_gold):
    nova = NovaSettings(var_dir=demo_gold)
    app = create_app(
        SETTINGS, Lake.from_settings(nova.storage), quarantine_dir=nova.ingestor.quarantine_dir
    )
    with TestClient(app) as client:
        client.get("/ready")  # gold is loaded before the first case
        TARGET.app = app
        yield
        TARGET.app = None


@schema.parametrize()
@settings(
    max_examples=25,  # per operation, in the fuzzing phase (the coverage phase adds its own)
    deadline=None,
    derandomize=True,  # the same cases every run: reproducible, and a stable run time
    suppress_health_check=list(HealthCheck),
)
def test_contract(case, target):
    case.call_and_validate(headers={"X-API-Key": KEY})
