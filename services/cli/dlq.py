"""`nova dlq`: events the transformer gave up on, and putting them back once the cause is fixed."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer
from nats.aio.client import Client as NatsClient
from nats.errors import NoServersError
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import NotFoundError

from shared.broker import NatsAuthenticationError, connect_once, without_credentials
from shared.events import (
    DLQ_ALL_SUBJECTS,
    DLQ_HEADER_DELIVERIES,
    DLQ_HEADER_ERROR,
    DLQ_HEADER_FAILED_AT,
    DLQ_HEADER_ORIGINAL_MSG_ID,
    DLQ_HEADER_ORIGINAL_STREAM_SEQ,
    DLQ_HEADER_ORIGINAL_SUBJECT,
    DLQ_SUBJECT_ROOT,
)
from shared.settings import NovaSettings

dlq_app = typer.Typer(help="Dead letters: events the transformer could not process.")
T = TypeVar("T")


@dataclass(frozen=True)
class DeadLetter:
    seq: int
    subject: str
    payload: bytes
    headers: dict[str, str]

    @property
    def original_subject(self) -> str:
        # The header is authoritative; the subject after the prefix says the same.
        fallback = self.subject.removeprefix(f"{DLQ_SUBJECT_ROOT}.")
        return self.headers.get(DLQ_HEADER_ORIGINAL_SUBJECT, fallback)

    @property
    def event(self) -> dict[str, Any]:
        """The payload's fields, or nothing when it is not a JSON object (malformed events)."""
        try:
            parsed = json.loads(self.payload)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}

    def as_dict(self) -> dict[str, Any]:
        event = self.event
        deliveries = self.headers.get(DLQ_HEADER_DELIVERIES, "")
        return {
            "stream_seq": self.seq,
            "original_subject": self.original_subject,
            "dataset": event.get("dataset"),
            "error": self.headers.get(DLQ_HEADER_ERROR),
            "deliveries": int(deliveries) if deliveries.isdigit() else None,
            "failed_at": self.headers.get(DLQ_HEADER_FAILED_AT),
            "correlation_id": event.get("correlation_id"),
            "event_id": event.get("event_id"),
            "original_stream_seq": self.headers.get(DLQ_HEADER_ORIGINAL_STREAM_SEQ),
            "original_msg_id": self.headers.get(DLQ_HEADER_ORIGINAL_MSG_ID),
        }

    def replay_msg_id(self) -> str:
        """A Nats-Msg-Id the event stream has not seen, so its duplicate window keeps the copy."""
        original = self.headers.get(DLQ_HEADER_ORIGINAL_MSG_ID) or self.event.get("event_id")
        return f"{original or 'dead-letter'}.replay.{self.seq}"


async def read_dead_letter(js: JetStreamContext, stream: str, seq: int) -> DeadLetter | None:
    try:
        raw = await js.get_msg(stream, seq=seq)
    except NotFoundError:
        return None
    return _dead_letter(raw)


async def read_dead_letters(js: JetStreamContext, stream: str) -> list[DeadLetter]:
    """Every dead letter, oldest first; none when the stream was never declared."""
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return []
    letters: list[DeadLetter] = []
    seq = info.state.first_seq
    while info.state.messages and seq <= info.state.last_seq:
        # "next by subject" skips the gaps replayed (deleted) letters leave in the sequence.
        try:
            raw = await js.get_msg(stream, seq=seq, subject=DLQ_ALL_SUBJECTS, next=True)
        except NotFoundError:
            break
        letters.append(_dead_letter(raw))
        assert raw.seq is not None
        seq = raw.seq + 1
    return letters


def _dead_letter(raw: RawStreamMsg) -> DeadLetter:
    assert raw.seq is not None
    return DeadLetter(
        seq=raw.seq, subject=raw.subject or "", payload=raw.data or b"", headers=_headers(raw)
    )


def _headers(raw: RawStreamMsg) -> dict[str, str]:
    """The headers, decoded as UTF-8 from the raw block.

    nats-py's `get_msg` parses them with `email`'s BytesParser, which turns a non-ASCII value
    (an error message naming `não_encontrado.xlsx`) into a Header object whose text is mangled;
    the raw block is still on the message, base64-encoded.
    """
    if not raw.hdrs:
        return {str(k): str(v) for k, v in (raw.headers or {}).items()}
    block = base64.b64decode(raw.hdrs)
    headers: dict[str, str] = {}
    for line in block.split(b"\r\n")[1:]:  # the first line is the `NATS/1.0` status line
        name, sep, value = line.partition(b":")
        if sep:
            headers[name.strip().decode(errors="replace")] = value.strip().decode(errors="replace")
    return headers


def run_against_nats(settings: NovaSettings, work: Coroutine[Any, Any, T]) -> T:
    """Run one NATS conversation; an unreachable server or a refused login is one readable
    line and exit code 1."""
    try:
        return asyncio.run(work)
    except NoServersError:
        typer.echo(
            f"cannot reach NATS at {without_credentials(settings.nats.url)}"
            " (is `nova up` running?)",
            err=True,
        )
        raise typer.Exit(1) from None
    except NatsAuthenticationError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None


async def open_jetstream(settings: NovaSettings) -> tuple[NatsClient, JetStreamContext]:
    nc = await connect_once(settings.nats, name="nova-cli")
    return nc, nc.jetstream()


@dlq_app.command("list")
def dlq_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show each dead letter: why it failed, how often it was tried, which file it came from."""
    settings = NovaSettings()

    async def work() -> list[DeadLetter]:
        nc, js = await open_jetstream(settings)
        try:
            return await read_dead_letters(js, settings.nats.dlq_stream)
        finally:
            await nc.close()

    letters = run_against_nats(settings, work())
    if as_json:
        typer.echo(json.dumps([letter.as_dict() for letter in letters], indent=2))
        return
    if not letters:
        typer.echo(f"no dead letters ({settings.nats.dlq_stream})")
        return
    for letter in letters:
        d = letter.as_dict()
        typer.echo(
            f"{d['stream_seq']}  {d['original_subject']}\n"
            f"  dataset: {d['dataset'] or '?'}   deliveries: {d['deliveries'] or '?'}"
            f"   failed at: {d['failed_at'] or '?'}\n"
            f"  correlation id: {d['correlation_id'] or '?'}\n"
            f"  error: {d['error'] or '?'}"
        )


@dlq_app.command("replay")
def dlq_replay(
    seqs: Annotated[
        list[int] | None, typer.Argument(help="Stream sequences, as `nova dlq list` shows them.")
    ] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False,
) -> None:
    """Publish dead letters again on their original subject, then remove them from the DLQ.

    Fix the cause first (a missing bronze object, a transformer bug): the transformer then
    processes them like new events. A letter leaves the DLQ only once JetStream stored it again.
    """
    if not replay_all and not seqs:
        typer.echo("name the stream sequences to replay, or pass --all", err=True)
        raise typer.Exit(2)
    settings = NovaSettings()
    dlq_stream, event_stream = settings.nats.dlq_stream, settings.nats.stream

    async def work() -> int:
        nc, js = await open_jetstream(settings)
        try:
            if replay_all:
                letters = await read_dead_letters(js, dlq_stream)
            else:
                found = [await read_dead_letter(js, dlq_stream, seq) for seq in seqs or []]
                missing = [s for s, letter in zip(seqs or [], found, strict=True) if not letter]
                if missing:  # replay none rather than some: the operator mistyped something
                    listed = ", ".join(map(str, missing))
                    typer.echo(f"not in {dlq_stream}: {listed} (see `nova dlq list`)", err=True)
                    raise typer.Exit(1)
                letters = [letter for letter in found if letter is not None]
            for letter in letters:
                ack = await js.publish(
                    letter.original_subject,
                    letter.payload,
                    headers={"Nats-Msg-Id": letter.replay_msg_id()},
                    stream=event_stream,  # refused unless the subject belongs to the events
                )
                # Deleted only after the event stream acknowledged the copy: a failure in
                # between leaves it in both, and replaying it again is dropped as a duplicate.
                await js.delete_msg(dlq_stream, letter.seq)
                typer.echo(
                    f"{letter.seq} -> {letter.original_subject} (event stream seq {ack.seq}"
                    + (", already there" if ack.duplicate else "")
                    + ")"
                )
            return len(letters)
        finally:
            await nc.close()

    replayed = run_against_nats(settings, work())
    typer.echo(f"replayed {replayed} dead letters")
