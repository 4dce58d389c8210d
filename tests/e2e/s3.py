"""What the S3 end-to-end tests share: moto's S3 server in this process, the stack started by
`nova up` with the lake on it, and ways to look at the result (bucket listing, NATS consumer
state, tables compared row by row).

moto runs as `ThreadedMotoServer` inside the test process rather than as `python -m moto.server`
because a server process that is killed loses its data: `stop()` here closes the listening
socket (clients get "connection refused", as with a MinIO that went away) while the in-memory
backend stays in this process, and `start()` on the same port serves the same objects again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import httpx
import nats
import pyarrow as pa
from moto.server import ThreadedMotoServer
from pydantic import SecretStr

from shared.settings import NovaSettings, StorageSettings
from shared.storage import Lake
from tests.conftest import REPO_ROOT, free_port, json_log_lines

NOVA = str(Path(sys.executable).parent / "nova")
ACCESS_KEY = "nova-test-access"
SECRET_KEY = "nova-test-secret"  # moto accepts any credentials; MinIO would check them
REGION = "us-east-1"
PREFIX = "lake"


def wait_for(
    check: Callable[[], Any], timeout: float, what: str, *, every: float = 0.25, detail=None
) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    extra = f"\n{detail()}" if detail is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} ({last!r}){extra}")


class MotoS3:
    """An S3-protocol server on a fixed loopback port that can be stopped and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: ThreadedMotoServer | None = None
        # One line per request on stderr otherwise.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        assert self._server is None, "already running"
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        deadline = time.monotonic() + 10
        while True:
            try:
                server.start()
                break
            except OSError:  # the old socket may linger a moment after stop()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()  # shuts the accept loop down and closes the socket
            self._server = None

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=2),
        )

    def create_bucket(self, bucket: str) -> None:
        self.client().create_bucket(Bucket=bucket)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        paginator = self.client().get_paginator("list_objects_v2")
        return sorted(
            item["Key"]
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        )

    def storage_settings(self, bucket: str) -> StorageSettings:
        return StorageSettings(
            backend="s3",
            s3_endpoint_url=self.url,
            s3_bucket=bucket,
            s3_prefix=PREFIX,
            s3_region=REGION,
            s3_access_key=SecretStr(ACCESS_KEY),
            s3_secret_key=SecretStr(SECRET_KEY),
        )

    def environment(self, bucket: str) -> dict[str, str]:
        """The variables that put a service's lake on this server, as an operator sets them."""
        return {
            "NOVA_STORAGE__BACKEND": "s3",
            "NOVA_STORAGE__S3_ENDPOINT_URL": self.url,
            "NOVA_STORAGE__S3_BUCKET": bucket,
            "NOVA_STORAGE__S3_PREFIX": PREFIX,
            "NOVA_STORAGE__S3_REGION": REGION,
            "NOVA_STORAGE__S3_ACCESS_KEY": ACCESS_KEY,
            "NOVA_STORAGE__S3_SECRET_KEY": SECRET_KEY,
        }


@dataclass
class S3Stack:
    """`nova up --no-demo --no-forecast` with its lake in a bucket of `s3`."""

    s3: MotoS3
    bucket: str
    var_dir: Path
    env: dict[str, str]
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.env['NOVA_API__PORT']}"

    @property
    def nats_url(self) -> str:
        return self.env["NOVA_NATS__URL"]

    @property
    def inbox(self) -> Path:
        return self.var_dir / "inbox"

    @property
    def lake(self) -> Lake:
        return Lake.from_settings(self.s3.storage_settings(self.bucket))

    @classmethod
    def create(cls, s3: MotoS3, tmp_path: Path, **extra_env: str) -> S3Stack:
        bucket = f"nova-{os.urandom(4).hex()}"
        s3.create_bucket(bucket)
        var_dir = tmp_path / "var"
        env = {
            **os.environ,
            **s3.environment(bucket),
            "NOVA_VAR_DIR": str(var_dir),
            "NOVA_NATS__URL": f"nats://127.0.0.1:{free_port()}",
            "NOVA_API__PORT": str(free_port()),
            "NOVA_INGESTOR__METRICS_PORT": str(free_port()),
            "NOVA_INGESTOR__STABLE_SECONDS": "0.5",
            "NOVA_API__VERSION_CHECK_SECONDS": "0.5",
            **extra_env,
        }
        return cls(s3, bucket, var_dir, env)

    def start(self, timeout: float = 120.0) -> None:
        self.process = subprocess.Popen(
            [NOVA, "up", "--no-demo", "--no-forecast"],
            cwd=self.var_dir.parent,
            env=self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        for line in self.process.stdout:  # nova up prints its banner once the stack answers
            self.output.append(line)
            if "Press Ctrl-C to stop." in line or time.monotonic() > deadline:
                break
        if self.process.poll() is not None or "Press Ctrl-C to stop.\n" not in self.output:
            self.process.kill()
            raise AssertionError("nova up did not come up:\n" + "".join(self.output))

    def stop(self) -> str:
        if self.process is None or self.process.poll() is not None:
            return ""
        self.process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            rest, _ = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            rest, _ = self.process.communicate()
        return rest

    def assert_alive(self) -> None:
        assert self.process is not None and self.process.poll() is None, (
            "nova up died:\n" + "".join(self.output) + "\n" + self.logs_tail()
        )

    # --- files ---------------------------------------------------------------------------

    def drop(self, sources: Iterable[Path]) -> list[Path]:
        """Copy beside the inbox, then rename in: the ingestor never sees half a file."""
        staging = self.var_dir / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        self.inbox.mkdir(parents=True, exist_ok=True)
        dropped = []
        for source in sources:
            staged = Path(shutil.copy(source, staging / source.name))
            dropped.append(staged.replace(self.inbox / source.name))
        return dropped

    def files_in(self, folder: str) -> list[Path]:
        root = self.var_dir / folder
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []

    def archived_names(self) -> list[str]:
        return sorted(p.name.split("-", 1)[1] for p in self.files_in("archive"))

    # --- logs ----------------------------------------------------------------------------

    def log_lines(self, service: str) -> list[dict[str, Any]]:
        return json_log_lines(self.var_dir / "log" / f"{service}.log")

    def events(self, service: str, name: str) -> list[dict[str, Any]]:
        return [line for line in self.log_lines(service) if line.get("event") == name]

    def logs_tail(self, lines: int = 15) -> str:
        logs = self.var_dir / "log"
        return "\n".join(
            f"== {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-lines:])
            for p in sorted(logs.glob("*.log"))
        )

    # --- API -----------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.api}{path}", params=params, timeout=10)

    def item_total(self) -> int:
        response = self.get("/api/v1/items", limit=1)
        return int(response.json()["total"]) if response.status_code == 200 else -1

    def all_item_codes(self) -> list[str]:
        codes: list[str] = []
        offset = 0
        while True:
            page = self.get("/api/v1/items", limit=500, offset=offset).json()
            codes.extend(item["item_code"] for item in page["items"])
            offset += 500
            if offset >= page["total"]:
                return codes

    # --- NATS ----------------------------------------------------------------------------

    def transformer_state(self) -> dict[str, int]:
        """The transformer's durable consumer and the dead-letter stream, as numbers."""
        settings = NovaSettings(_env_file=None)

        async def look() -> dict[str, int]:
            nc = await nats.connect(self.nats_url, connect_timeout=5, max_reconnect_attempts=1)
            try:
                js = nc.jetstream()
                info = await js.consumer_info(settings.nats.stream, "transformer")
                dlq = await js.stream_info(settings.nats.dlq_stream)
                return {
                    "delivered": info.delivered.stream_seq or 0,
                    "ack_floor": info.ack_floor.stream_seq or 0,
                    "pending": info.num_pending or 0,
                    "ack_pending": info.num_ack_pending or 0,
                    "redelivered": info.num_redelivered or 0,
                    "dead_letters": dlq.state.messages,
                }
            finally:
                await nc.close()

        return asyncio.run(look())

    def pipeline_settled(self) -> bool:
        """The inbox is empty and the transformer settled every bronze event published (the
        ingestor publishes before it archives, so nothing is on its way)."""
        if any(p.is_file() for p in self.inbox.rglob("*")):
            return False
        state = self.transformer_state()
        return state["pending"] == 0 and state["ack_pending"] == 0 and state["delivered"] > 0


# --- tables ---------------------------------------------------------------------------------

IGNORED_TABLES = {"dq_results", "builds", "forecast_runs"}


def table_names(lake: Lake, layer: str) -> list[str]:
    """Delta tables of a layer, from their transaction logs."""
    names = {
        path.split("/")[1]
        for path in lake.list_files(layer)
        if "/_delta_log/" in path and path.endswith(".json")
    }
    return sorted(names)


def sorted_rows(table: pa.Table, drop: Iterable[str] = ()) -> list[tuple]:
    columns = sorted(c for c in table.column_names if c not in set(drop))
    rows = table.select(columns).to_pylist()
    return sorted((tuple((k, _comparable(r[k])) for k in columns) for r in rows), key=repr)


def _comparable(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 9)
    return value


def read_tables(lake: Lake, layers: Iterable[str] = ("silver", "gold")) -> dict[str, pa.Table]:
    tables = {}
    for layer in layers:
        for name in table_names(lake, layer):
            if name in IGNORED_TABLES:
                continue
            delta = lake.delta_table(layer, name)  # type: ignore[arg-type]
            assert delta is not None
            tables[f"{layer}.{name}"] = delta.to_pyarrow_table()
    return tables


def differences(
    actual: Mapping[str, pa.Table], expected: Mapping[str, pa.Table], drop: Iterable[str] = ()
) -> list[str]:
    """Human-readable differences between two sets of tables (empty when equal)."""
    problems = []
    if sorted(actual) != sorted(expected):
        problems.append(f"tables differ: {sorted(actual)} != {sorted(expected)}")
    for name in sorted(set(actual) & set(expected)):
        got, want = sorted_rows(actual[name], drop), sorted_rows(expected[name], drop)
        if got == want:
            continue
        missing = len(set(want) - set(got))
        extra = len(set(got) - set(want))
        problems.append(
            f"{name}: {len(got)} rows, expected {len(want)} ({missing} missing, {extra} unexpected"
            f", duplicates: {len(got) - len(set(got))})"
        )
    return problems


def copy_bronze(source: Lake, target: Lake) -> list[str]:
    """Every bronze object of `source` written at the same path in `target`."""
    paths = [p for p in source.list_files("bronze") if p.endswith(".parquet")]
    for path in paths:
        target.write_parquet(path, source.read_parquet(path))
    return paths


def run_forecaster(env: Mapping[str, str], log_path: Path, timeout: float) -> int:
    """`python -m services.forecaster`: one offline run, as a scheduler would start it."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.forecaster"],
            cwd=REPO_ROOT,
            env={**env, "NOVA_LOG__FORMAT": "json"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(
            f"forecaster still running after {timeout:.0f}s:\n"
            + "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
        ) from None
