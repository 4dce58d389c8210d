"""Container healthcheck of a Nova service image: `python healthcheck.py` exits 0 when healthy.

Copied into every image (the Dockerfile's HEALTHCHECK and compose's `healthcheck` run it). Only
the standard library, so it works in every service's image. What "healthy" means per service
(`SERVICE`, set by the Dockerfile from its build argument):

- api: `GET /health` answers 200 (the process serves; `/ready` is for load balancers, it
  stays 503 until the first gold build, which would mark a fresh stack unhealthy forever).
- ingestor: its Prometheus endpoint answers (`NOVA_INGESTOR__METRICS_PORT`), which it serves
  only once connected to NATS (stream and ledger ready); with metrics off: NATS is reachable.
- transformer, forecaster: they serve no port, so the check is that a NATS server in
  `NOVA_NATS__URL` accepts a TCP connection. A crashed process ends the container (PID 1)
  and the restart policy acts; this check catches a network partition from NATS.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request
from urllib.parse import urlparse

TIMEOUT_SECONDS = 3.0


def http_ok(url: str) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return response.status == 200, f"{url} answered {response.status}"
    except (urllib.error.URLError, OSError) as error:
        return False, f"{url}: {error}"


def nats_reachable(urls: str) -> tuple[bool, str]:
    """Any server of a comma-separated NATS URL list accepts a TCP connection."""
    tried = []
    for raw in urls.split(","):
        url = urlparse(raw.strip() if "://" in raw else f"nats://{raw.strip()}")
        host, port = url.hostname or "127.0.0.1", url.port or 4222
        try:
            with socket.create_connection((host, port), timeout=TIMEOUT_SECONDS):
                return True, f"nats {host}:{port} reachable"
        except OSError as error:
            tried.append(f"{host}:{port} ({error})")
    return False, "no NATS server reachable: " + ", ".join(tried)


def check(service: str, env: dict[str, str]) -> tuple[bool, str]:
    nats_url = env.get("NOVA_NATS__URL", "nats://127.0.0.1:4222")
    if service == "api":
        port = env.get("NOVA_API__PORT", "8000")
        return http_ok(f"http://127.0.0.1:{port}/health")
    if service == "ingestor":
        port = env.get("NOVA_INGESTOR__METRICS_PORT", "9101")
        if port != "0":
            return http_ok(f"http://127.0.0.1:{port}/metrics")
        return nats_reachable(nats_url)
    if service in ("transformer", "forecaster"):
        return nats_reachable(nats_url)
    return False, f"unknown SERVICE {service!r}"


def main() -> int:
    healthy, detail = check(os.environ.get("SERVICE", ""), dict(os.environ))
    print(("healthy: " if healthy else "unhealthy: ") + detail)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
