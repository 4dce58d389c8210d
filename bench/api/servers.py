"""Server processes: spawn, wait for the first answer, time single requests, stop.
Standard library only (the parent stays small)."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.common import REPO_ROOT

HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """The server did not start, or died."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Answer:
    status: int
    seconds: float
    body: bytes

    @property
    def body_bytes(self) -> int:
        return len(self.body)


def get(port: int, url: str, timeout: float = 60.0) -> Answer:
    """One GET on a fresh connection, timed from sending the request to the last body byte
    (the connection is opened before the clock starts)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.connect()
        started = time.perf_counter()
        connection.request("GET", url)
        response = connection.getresponse()
        body = response.read()
        return Answer(response.status, time.perf_counter() - started, body)
    finally:
        connection.close()


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    spawned_at: float  # perf_counter() just before spawning
    log_path: Path
    log_file: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_first_answer(self, url: str, timeout: float = 120.0) -> tuple[float, Answer]:
        """Poll until `url` answers 200: seconds from spawn to that answer, and the answer
        (its `seconds` is the latency of that first successful request alone)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with {self.process.returncode}: {self.tail()}"
                )
            try:
                answer = get(self.port, url)
            except OSError:  # not listening yet
                time.sleep(0.005)
                continue
            if answer.status == 200:
                return time.perf_counter() - self.spawned_at, answer
            time.sleep(0.005)
        raise ServerError(f"{self.name} gave no 200 for {url} in {timeout:.0f} s: {self.tail()}")

    def memory_mb(self) -> dict[str, float]:
        """Current and peak resident memory of the server process (VmRSS, VmHWM), MiB."""
        values: dict[str, float] = {}
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = round(int(value.split()[0]) / 1024, 1)
        except OSError:
            pass
        return values

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log_file.close()

    def tail(self, chars: int = 2000) -> str:
        if not self.log_file.closed:
            self.log_file.flush()
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def spawn(
    name: str,
    args: list[str],
    env: dict[str, str],
    port: int,
    log_dir: Path,
    cwd: Path = REPO_ROOT,
) -> Server:
    """`python <args>` in `cwd` with `env` added (and every inherited NOVA_* variable
    removed), listening on `port`; output to a log file in `log_dir`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log_file = log_path.open("wb")
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("NOVA_")}
    full_env = {**inherited, **env}
    spawned_at = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    return Server(name, process, port, spawned_at, log_path, log_file)
