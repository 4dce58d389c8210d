"""NATS with a user and password, as deploy/ runs it: a real nats-server whose config reads
them from its environment (`$NATS_USER`, `$NATS_PASSWORD`), clients given NOVA_NATS__USER and
NOVA_NATS__PASSWORD. Right credentials work; a wrong or missing one fails at once, naming the
failure, instead of being retried forever."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from structlog.testing import capture_logs

from services.transformer.main import build_app, serve
from shared.broker import NatsAuthenticationError, connect, connect_once, ensure_stream
from shared.events import BronzeIngested
from shared.settings import NatsSettings, NovaSettings
from tests.conftest import free_port, nats_server
from tests.integration.conftest import ingestor_process
from tests.shared.test_events import bronze_event

USER = "nova"
# base64, as `openssl rand -base64` makes them: `+`, `/` and `=` must survive the config
PASSWORD = "Xk3+q9/Lr0Tw7vB2=="
WRONG = "not-the-password"


@pytest.fixture
def secured_nats(tmp_path: Path) -> Iterator[str]:
    """A nats-server with JetStream that requires USER and PASSWORD of every client."""
    conf = tmp_path / "nats-auth.conf"
    conf.write_text(
        f'jetstream {{ store_dir: "{tmp_path / "nats"}" }}\n'
        "authorization {\n  user: $NATS_USER\n  password: $NATS_PASSWORD\n}\n"
    )
    env = {**os.environ, "NATS_USER": USER, "NATS_PASSWORD": PASSWORD}
    pid = str(tmp_path / "nats.pid")
    with nats_server(free_port(), "-c", str(conf), "-a", "127.0.0.1", "-P", pid, env=env) as url:
        yield url


def _event() -> BronzeIngested:
    """An event the transformer terminates at once (no such dataset)."""
    return bronze_event(dataset="no_such_dataset")


def _refused(settings: NatsSettings, how: Any = connect) -> tuple[str, list[dict[str, Any]], float]:
    """The error message, the log lines and the seconds until a refused connect gave up."""

    async def attempt() -> None:
        client = await how(settings, "test")
        await client.close()

    started = time.monotonic()
    with capture_logs() as logs, pytest.raises(NatsAuthenticationError) as refused:
        asyncio.run(attempt())
    return str(refused.value), logs, time.monotonic() - started


def test_right_credentials_connect_and_publish_to_jetstream(secured_nats: str) -> None:
    settings = NatsSettings(url=secured_nats, user=USER, password=PASSWORD)

    async def publish() -> tuple[int, int]:
        client = await connect(settings, "test")
        try:
            js = client.jetstream()
            await ensure_stream(js, settings)
            event = _event()
            ack = await js.publish(event.subject, event.to_bytes())
        finally:
            await client.close()
        once = await connect_once(settings, "test")  # the command line's way in
        try:
            info = await once.jetstream().stream_info(settings.stream)
        finally:
            await once.close()
        return ack.seq, info.state.messages

    assert asyncio.run(publish()) == (1, 1)


@pytest.mark.parametrize("how", [connect, connect_once], ids=["connect", "connect_once"])
def test_a_wrong_password_fails_at_once_saying_authentication_failed(
    secured_nats: str, how: Any
) -> None:
    settings = NatsSettings(url=secured_nats, user=USER, password=WRONG)
    message, logs, seconds = _refused(settings, how)
    assert message == (
        f"NATS authentication failed at {secured_nats}: the server refused user 'nova' or its "
        "password: check NOVA_NATS__USER and NOVA_NATS__PASSWORD"
    )
    assert seconds < 5, "not retried (connect alone would retry forever)"
    (line,) = [entry for entry in logs if entry["event"] == "nats_authentication_failed"]
    assert line["log_level"] == "error"
    assert line["user"] == USER and line["servers"] == [secured_nats]
    for text in (message, repr(logs)):
        assert WRONG not in text and PASSWORD not in text


@pytest.mark.parametrize("how", [connect, connect_once], ids=["connect", "connect_once"])
def test_no_credentials_fail_at_once_saying_they_are_required(secured_nats: str, how: Any) -> None:
    message, logs, seconds = _refused(NatsSettings(url=secured_nats), how)
    assert message == (
        f"NATS authentication failed at {secured_nats}: the server requires a user and "
        "password: set NOVA_NATS__USER and NOVA_NATS__PASSWORD"
    )
    assert seconds < 5
    assert [entry["user"] for entry in logs if entry["event"] == "nats_authentication_failed"] == [
        None
    ]


def test_a_password_changed_on_the_server_later_is_logged_on_each_reconnect_attempt(
    secured_nats: str, tmp_path: Path
) -> None:
    """Once connected, a refusal does not end the client (the server's users may be fixed
    again); every refused reconnect attempt says so in the log."""
    settings = NatsSettings(url=secured_nats, user=USER, password=PASSWORD)
    conf = tmp_path / "nats-auth.conf"

    async def scenario() -> tuple[bool, bool]:
        client = await connect(settings, "test")
        try:
            conf.write_text(conf.read_text().replace("$NATS_PASSWORD", '"rotated"'))
            os.kill(int((tmp_path / "nats.pid").read_text()), signal.SIGHUP)  # reload
            deadline = time.monotonic() + 15
            while len(refusals(logs)) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            return client.is_closed, client.is_connected
        finally:
            await client.close()

    with capture_logs() as logs:
        closed, connected = asyncio.run(scenario())
    assert len(refusals(logs)) >= 2, "each refused attempt is logged"
    assert not closed and not connected  # still trying, not given up


def refusals(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == "nats_authentication_failed"]


def test_credentials_in_the_url_never_reach_the_message(secured_nats: str) -> None:
    inline = secured_nats.replace("nats://", f"nats://{USER}:{WRONG}@")
    message, logs, _ = _refused(NatsSettings(url=inline))
    assert WRONG not in message and WRONG not in repr(logs)
    assert f"at {secured_nats}:" in message


@pytest.mark.parametrize("also_in_url", [False, True], ids=["settings", "settings-and-url"])
def test_the_transformer_consumes_through_an_authenticated_broker(
    secured_nats: str, tmp_path: Path, also_in_url: bool
) -> None:
    """The transformer's FastStream broker gets the credentials: its durable consumer takes an
    event (an unknown dataset, terminated at once) from the authenticated server. The same
    credentials also written into NOVA_NATS__URL (FastStream refuses both) change nothing."""
    inline = f"nats://{USER}:{quote(PASSWORD, safe='')}@"
    url = secured_nats.replace("nats://", inline) if also_in_url else None
    settings = NovaSettings(
        var_dir=tmp_path,
        nats={"url": url or secured_nats, "user": USER, "password": PASSWORD},
    )

    async def scenario() -> tuple[int, int]:
        client = await connect(settings.nats, "test")
        js = client.jetstream()
        await ensure_stream(js, settings.nats)
        app = build_app(settings)
        await app.broker.start()
        try:
            event = _event()
            await js.publish(event.subject, event.to_bytes())
            deadline = time.monotonic() + 20
            info = await js.consumer_info(settings.nats.stream, "transformer")
            while (info.delivered.stream_seq < 1 or info.num_ack_pending) and (
                time.monotonic() < deadline
            ):
                await asyncio.sleep(0.1)
                info = await js.consumer_info(settings.nats.stream, "transformer")
        finally:
            await app.broker.stop()
            await client.close()
        return info.delivered.stream_seq, info.num_ack_pending

    assert asyncio.run(scenario()) == (1, 0)


def test_the_transformer_stops_on_a_wrong_password(secured_nats: str, tmp_path: Path) -> None:
    settings = NovaSettings(
        var_dir=tmp_path, nats={"url": secured_nats, "user": USER, "password": WRONG}
    )
    with pytest.raises(NatsAuthenticationError, match="authentication failed"):
        asyncio.run(asyncio.wait_for(serve(settings), 20))  # its setup connection

    async def start_broker() -> None:  # and its FastStream broker on its own
        app = build_app(settings)
        try:
            await app.broker.start()
        finally:
            await app.broker.stop()

    with pytest.raises(NatsAuthenticationError, match="refused user 'nova'"):
        asyncio.run(asyncio.wait_for(start_broker(), 20))


def _snapshot() -> bytes:
    lines = ["DATA POSIÇÃO;DEPÓSITO;PRODUTO/SERVIÇO;SALDO", "31/10/2025;ALMOX-A;000001;3,00"]
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def _stream_messages(settings: NatsSettings) -> int:
    async def count() -> int:
        client = await connect(settings, "test")
        try:
            return (await client.jetstream().stream_info(settings.stream)).state.messages
        finally:
            await client.close()

    return asyncio.run(count())


@pytest.fixture
def ingestor_with_password(
    secured_nats: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], AbstractContextManager[subprocess.Popen[bytes]]]:
    """Starts the ingestor process against secured_nats as USER with a given password."""

    def start(password: str) -> AbstractContextManager[subprocess.Popen[bytes]]:
        monkeypatch.setenv("NOVA_NATS__USER", USER)
        monkeypatch.setenv("NOVA_NATS__PASSWORD", password)
        return ingestor_process(
            tmp_path / "var", secured_nats, tmp_path / "ingestor.log", stable_seconds=0.2
        )

    return start


def test_the_ingestor_process_publishes_with_credentials(
    secured_nats: str, tmp_path: Path, ingestor_with_password: Any
) -> None:
    var = tmp_path / "var"
    (var / "inbox").mkdir(parents=True)
    (var / "inbox" / "stock.csv").write_bytes(_snapshot())
    log = tmp_path / "ingestor.log"
    with ingestor_with_password(PASSWORD) as process:
        deadline = time.monotonic() + 60
        while not (var / "archive").exists() or not any((var / "archive").rglob("*-stock.csv")):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        # its bronze.ingested event
        assert _stream_messages(NatsSettings(url=secured_nats, user=USER, password=PASSWORD)) == 1
    assert "nats_authentication_failed" not in log.read_text()


def test_the_ingestor_process_exits_on_a_wrong_password_naming_the_failure(
    tmp_path: Path, ingestor_with_password: Any
) -> None:
    with ingestor_with_password(WRONG) as process:
        code = process.wait(30)
    text = (tmp_path / "ingestor.log").read_text()
    assert code != 0, text[-3000:]
    assert '"event": "nats_authentication_failed"' in text
    assert "NatsAuthenticationError: NATS authentication failed" in text
    assert WRONG not in text and PASSWORD not in text
