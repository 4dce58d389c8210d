"""A NATS URL naming a cluster's servers comma-separated reaches a live server in the list."""

from __future__ import annotations

import asyncio

from shared.broker import connect
from shared.settings import NatsSettings
from tests.conftest import free_port


def test_servers_are_split_on_commas():
    settings = NatsSettings(url=" nats://a:4222, nats://b:4222 ,nats://c:4222")
    assert settings.servers == ["nats://a:4222", "nats://b:4222", "nats://c:4222"]


def test_connect_takes_a_comma_separated_cluster_url(nats_url):
    dead = f"nats://127.0.0.1:{free_port()}"

    async def round_trip() -> bytes:
        client = await connect(NatsSettings(url=f"{dead},{nats_url}"), "test")
        try:
            subscription = await client.subscribe("t")
            await client.publish("t", b"hello")
            return (await subscription.next_msg(timeout=5)).data
        finally:
            await client.close()

    assert asyncio.run(round_trip()) == b"hello"


def test_without_credentials_keeps_only_where_to_connect():
    from shared.broker import without_credentials

    assert without_credentials("nats://nova:pw@h:4222") == "nats://h:4222"
    assert without_credentials("nova:p@ss@h:4222") == "nats://h:4222"  # no scheme, `@` in it
    assert without_credentials("nats://s3cr3t-token@h:4222") == "nats://h:4222"
    assert without_credentials("tls://h:4222") == "tls://h:4222"
