"""The API's outermost layer, as plain ASGI: request limits, API keys, answers straight from
the response cache, and request metrics.

A cached answer is sent from here without routing, validation or a thread hop, which is most
of what a request costs; everything else goes on to the FastAPI app.
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.gold import GoldState
from services.api.problems import PROBLEM, instance

# The API is read-only: every route answers GET (and so HEAD); anything else is a 405 here,
# the same for every path (static files and unknown paths included).
ALLOWED_METHODS = ("GET", "HEAD")
# What a keyed answer varies on, so a shared cache never gives one client's answer to another.
KEY_HEADERS = b"Authorization, X-API-Key"


@dataclass(frozen=True)
class CachedAnswer:
    body: bytes
    media_type: str
    etag: str
    route: str  # route template, the metrics label
    headers: tuple[tuple[bytes, bytes], ...]


class ResponseCache:
    """Rendered answers keyed by (gold view, path, raw query); old views simply age out."""

    def __init__(self, entries: int) -> None:
        self._entries = entries
        self._data: OrderedDict[tuple[str, str, bytes], CachedAnswer] = OrderedDict()

    def get(self, key: tuple[str, str, bytes]) -> CachedAnswer | None:
        hit = self._data.get(key)
        if hit is not None:
            with suppress(KeyError):  # evicted by another thread meanwhile
                self._data.move_to_end(key)
        return hit

    def put(self, key: tuple[str, str, bytes], answer: CachedAnswer) -> None:
        if self._entries == 0:
            return
        self._data[key] = answer
        while len(self._data) > self._entries:
            try:
                self._data.popitem(last=False)
            except KeyError:
                break


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "nova_api_requests_total", "HTTP requests.", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "nova_api_request_duration_seconds",
            "Time to answer a request.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "nova_api_cache_hits_total", "Answers served from the cache.", registry=self.registry
        )
        self.versions = Gauge(
            "nova_api_gold_version", "Gold table version served.", ["table"], registry=self.registry
        )


def header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return b""


def keyed(send: Send) -> Send:
    """`send` with the headers of an answer that needed a key: private (no shared cache may
    keep it) and varying on the key headers."""

    async def send_private(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers, cache_control, vary = [], [], []
            for name, value in message.get("headers", []):
                if name.lower() == b"cache-control":
                    cache_control.append(value)
                elif name.lower() == b"vary":
                    vary.append(value)
                else:
                    headers.append((name, value))
            if not any(b"private" in v for v in cache_control):
                cache_control.insert(0, b"private")
            headers += [
                (b"cache-control", b", ".join(cache_control)),
                (b"vary", b", ".join([*vary, KEY_HEADERS])),
            ]
            message = {**message, "headers": headers}
        await send(message)

    return send_private


def problem(status: int, title: str, detail: str, path: str, **headers: str) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail,
            "instance": instance(path)}  # fmt: skip
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers or None)


class Gateway:
    def __init__(
        self,
        app: ASGIApp,
        *,
        state: GoldState,
        cache: ResponseCache,
        metrics: Metrics,
        keys: list[str],
        max_query_bytes: int,
    ) -> None:
        self._app = app
        self._state = state
        self._cache = cache
        self._metrics = metrics
        self._keys = [k.encode() for k in keys]
        self._max_query = max_query_bytes

    def _authorized(self, scope: Scope) -> bool:
        given = header(scope, b"x-api-key")
        auth = header(scope, b"authorization")
        if auth[:7].lower() == b"bearer ":
            given = auth[7:].strip()
        return any(hmac.compare_digest(given, key) for key in self._keys)

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        path = scope["path"]
        if scope["method"] not in ALLOWED_METHODS:
            return problem(
                405, "Method not allowed", f"the API is read-only: {scope['method']} is not "
                "supported", path, Allow=", ".join(ALLOWED_METHODS),
            )  # fmt: skip
        if len(scope["query_string"]) > self._max_query:
            return problem(414, "Query too long", f"at most {self._max_query} bytes", path)
        length = header(scope, b"content-length")
        if (length and length != b"0") or header(scope, b"transfer-encoding"):
            return problem(413, "Body not accepted", "the API is read-only; send no body", path)
        if self._keys and path.startswith("/api/") and not self._authorized(scope):
            return problem(
                401, "API key required", "send Authorization: Bearer <key> or X-API-Key: <key>",
                path, **{"WWW-Authenticate": 'Bearer realm="nova"'},
            )  # fmt: skip
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        if self._keys and scope["path"].startswith("/api/"):
            send = keyed(send)
        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            self._observe("refused", refusal.status_code, started)
            return
        if scope["method"] == "GET" and scope["path"].startswith("/api/v1/"):
            key = (self._state.current.etag, scope["path"], scope["query_string"])
            hit = self._cache.get(key)
            if hit is not None:
                self._metrics.cache_hits.inc()
                status = await self._send_cached(scope, send, hit)
                self._observe(hit.route, status, started)
                return
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            self._observe(getattr(route, "path", "unmatched"), status, started)

    async def _send_cached(self, scope: Scope, send: Send, hit: CachedAnswer) -> int:
        headers: list[Any] = [(b"etag", hit.etag.encode()), *hit.headers]
        if hit.etag.encode() in header(scope, b"if-none-match"):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return 304
        headers += [
            (b"content-type", hit.media_type.encode()),
            (b"content-length", str(len(hit.body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": hit.body})
        return 200

    def _observe(self, route: str, status: int, started: float) -> None:
        self._metrics.requests.labels(route, str(status)).inc()
        self._metrics.latency.labels(route).observe(time.perf_counter() - started)
