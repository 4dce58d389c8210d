"""The docs pages work offline and with keys, and keyed answers stay private (issue 13,
item 9)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from shared.settings import ApiSettings, StorageSettings
from shared.storage import Lake

KEY = "docs-test-key"
EXTERNAL_LOAD = re.compile(r"""(?:\bsrc\s*[:=]\s*|url\(\s*)["']?((?:https?:)?//[^"')\s]+)""", re.I)


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake.from_settings(StorageSettings(local_root=tmp_path / "lake"))


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_load_nothing_from_another_host(lake, page):
    with TestClient(create_app(ApiSettings(keys=KEY), lake)) as client:
        response = client.get(page)
        assert response.status_code == 200
        html = response.text
        assert not re.search(r"\b(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.I), html
        assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
        assert any(a.endswith(".js") for a in assets), assets
        for asset in [*assets, "/openapi.json"]:
            assert client.get(asset).status_code == 200, asset
        # What the scripts and stylesheets themselves load (an image, a font), not the links
        # a reader may follow.
        for asset in assets:
            if asset.endswith((".js", ".css")):
                loads = EXTERNAL_LOAD.findall(client.get(asset).text)
                assert not loads, (asset, loads)


def test_the_document_declares_how_to_send_a_key_when_keys_are_set(lake):
    with TestClient(create_app(ApiSettings(keys=KEY), lake)) as client:
        spec = client.get("/openapi.json").json()
        schemes = spec["components"]["securitySchemes"]
        assert {"type": "apiKey", "in": "header", "name": "X-API-Key"} in schemes.values()
        items = spec["paths"]["/api/v1/items"]["get"]
        assert items["security"] and "401" in items["responses"]
        assert "security" not in spec["paths"]["/health"]["get"]
    with TestClient(create_app(ApiSettings(), lake)) as client:
        spec = client.get("/openapi.json").json()
        assert "securitySchemes" not in spec["components"], "no key is needed: none declared"


def test_answers_that_needed_a_key_are_private_and_vary_on_it(lake):
    with TestClient(create_app(ApiSettings(keys=KEY), lake)) as client:
        first = client.get("/api/v1/items", headers={"X-API-Key": KEY})
        cached = client.get("/api/v1/items", headers={"Authorization": f"Bearer {KEY}"})
        revalidated = client.get(
            "/api/v1/items", headers={"X-API-Key": KEY, "If-None-Match": first.headers["etag"]}
        )
        refused = client.get("/api/v1/items")
        unversioned = client.get("/api/v1/ingestions", headers={"X-API-Key": KEY})
        assert [r.status_code for r in (first, cached, revalidated, refused, unversioned)] == [
            200, 200, 304, 401, 200,
        ]  # fmt: skip
        for response in (first, cached, revalidated, refused, unversioned):
            assert "private" in response.headers["cache-control"], response.request.url
            vary = {v.strip().lower() for v in response.headers["vary"].split(",")}
            assert {"authorization", "x-api-key"} <= vary
        assert "max-age=" in first.headers["cache-control"], "revalidation rules kept"
        assert "private" not in client.get("/health").headers.get("cache-control", "")
    with TestClient(create_app(ApiSettings(), lake)) as client:
        open_answer = client.get("/api/v1/items")
        assert "private" not in open_answer.headers["cache-control"], "no key: shared caches ok"


@pytest.mark.parametrize("keys", ["", KEY])
def test_a_problem_names_a_long_path_without_echoing_it_whole(lake, keys):
    """A 60 KB path gets a short answer (401 with keys; without, 422: no code is that long),
    never its copy."""
    path = "/api/v1/items/" + "9" * 60_000  # httpx refuses a URL over 64 KiB
    with TestClient(create_app(ApiSettings(keys=keys), lake)) as client:
        response = client.get(path)
        assert response.status_code == (401 if keys else 422)
        assert response.headers["content-type"] == "application/problem+json"
        assert len(response.content) < 2_000
        assert response.json()["instance"].startswith("/api/v1/items/999")
