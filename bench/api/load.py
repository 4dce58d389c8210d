"""The load generator: `python -m bench.api.load SPEC.json`, in its own process so that it
does not share the server's GIL. Prints one JSON line of results.

N connections (HTTP/1.1 keep-alive, raw asyncio streams: a minimal client costs far less CPU
per request than httpx, which matters when client and server share 2 cores) each send one
request at a time, back to back, for `warmup` + `duration` seconds. Requests that complete
inside the measured window count; every latency is kept (send of the request to the last byte
of the body). Any status other than 200, and any connection error, is an error.

Modes: `repeat` draws each request's URL at random from the given list (seeded); with
`prime`, every URL is first requested once (timed and reported apart: the first request of
each URL, a cache miss), so that the API then answers from its response cache; `unique`
walks the list in a shuffled order and appends `_bench=<n>` with a counter that never
repeats, so the cache never has the answer: FastAPI ignores the unknown parameter, the
response cache keys on it, and the work is the same as for the URL without it.

Also reported: the CPU seconds the server process (all threads, from /proc) and this process
used during the measured window.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class Recorder:
    window_start: float
    window_end: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    body_bytes: int = 0

    def add(self, started: float, done: float, status: int, size: int, url: str) -> None:
        if not self.window_start <= done < self.window_end:
            return
        self.latencies.append(done - started)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.body_bytes += size
        if status != 200:
            self.fail(f"{status} {url}")

    def fail(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what)


def cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of a process (all its threads)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def read_response(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    """Status, body size and whether the server will close the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    chunked = close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = b"close" in value.lower()
    if not chunked:
        await reader.readexactly(length)
        return status, length, close
    size = 0
    while True:
        chunk = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        await reader.readexactly(chunk + 2)
        size += chunk
        if chunk == 0:
            return status, size, close


class Urls:
    def __init__(self, urls: list[str], mode: str, seed: int, counter_base: int) -> None:
        self._urls = urls
        self._mode = mode
        self._rng = random.Random(seed)
        self._order = list(range(len(urls)))
        self._rng.shuffle(self._order)
        self._count = 0
        self._base = counter_base

    def next(self) -> str:
        index = self._count
        self._count += 1
        if self._mode == "repeat":
            return self._urls[self._rng.randrange(len(self._urls))]
        url = self._urls[self._order[index % len(self._order)]]
        return f"{url}{'&' if '?' in url else '?'}_bench={self._base + index}"


async def connection(host: str, port: int, urls: Urls, recorder: Recorder, stop_at: float) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.perf_counter() < stop_at:
        url = urls.next()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            assert reader is not None
            started = time.perf_counter()
            writer.write(f"GET {url} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            status, size, close = await read_response(reader)
            recorder.add(started, time.perf_counter(), status, size, url)
            if close:
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as error:
            if recorder.window_start <= time.perf_counter() < recorder.window_end:
                recorder.fail(f"{type(error).__name__}: {error} ({url})")
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


async def prime(host: str, port: int, urls: list[str], connections: int) -> dict[str, Any]:
    """Every URL once, spread over the connections: the cache then holds every answer.
    These are the first requests of each URL (cache misses), under the same concurrency."""
    recorder = Recorder(0.0, float("inf"))
    pending = iter(urls)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for url in pending:
                started = time.perf_counter()
                writer.write(f"GET {url} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
                status, size, _ = await read_response(reader)
                recorder.add(started, time.perf_counter(), status, size, url)
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(connections, len(urls)))))
    latencies = sorted(recorder.latencies)
    return {
        "requests": len(latencies),
        "seconds": round(time.perf_counter() - began, 3),
        "errors": recorder.errors,
        "error_samples": recorder.error_samples,
        "p50_ms": 1000 * percentile(latencies, 50),
        "p99_ms": 1000 * percentile(latencies, 99),
        "max_ms": 1000 * latencies[-1] if latencies else float("nan"),
    }


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    host, port = spec["host"], int(spec["port"])
    warmup, duration = float(spec["warmup"]), float(spec["duration"])
    connections = int(spec["connections"])
    primed = (
        await prime(host, port, spec["urls"], connections)
        if spec["mode"] == "repeat" and spec.get("prime")
        else None
    )
    urls = Urls(spec["urls"], spec["mode"], int(spec.get("seed", 0)), int(spec.get("base", 0)))
    began = time.perf_counter()
    recorder = Recorder(began + warmup, began + warmup + duration)
    server_pid = spec.get("server_pid")

    async def sample_at(moment: float) -> tuple[float | None, float]:
        await asyncio.sleep(max(0.0, moment - time.perf_counter()))
        return cpu_seconds(server_pid), time.process_time()

    samples = asyncio.gather(sample_at(recorder.window_start), sample_at(recorder.window_end))
    await asyncio.gather(
        *(connection(host, port, urls, recorder, recorder.window_end) for _ in range(connections))
    )
    (server_0, client_0), (server_1, client_1) = await samples
    latencies = sorted(recorder.latencies)
    n = len(latencies)
    return {
        "mode": spec["mode"],
        "primed": primed,
        "connections": connections,
        "warmup_seconds": warmup,
        "duration_seconds": duration,
        "distinct_urls": len(spec["urls"]),
        "requests": n,
        "requests_per_second": n / duration,
        "errors": recorder.errors,
        "error_samples": recorder.error_samples,
        "statuses": {str(k): v for k, v in sorted(recorder.statuses.items())},
        "p50_ms": 1000 * percentile(latencies, 50),
        "p90_ms": 1000 * percentile(latencies, 90),
        "p99_ms": 1000 * percentile(latencies, 99),
        "max_ms": 1000 * latencies[-1] if n else float("nan"),
        "mean_ms": 1000 * sum(latencies) / n if n else float("nan"),
        "mean_body_bytes": recorder.body_bytes / n if n else 0,
        "server_cpu_seconds": None
        if server_0 is None or server_1 is None
        else round(server_1 - server_0, 3),
        "client_cpu_seconds": round(client_1 - client_0, 3),
    }


def main(argv: list[str]) -> int:
    (spec_path,) = argv
    spec = json.loads(Path(spec_path).read_text())
    print(json.dumps(asyncio.run(run(spec))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
