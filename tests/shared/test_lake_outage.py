"""The lake on an S3 server that goes away, comes back, or stops answering; and the conditional
PUT that Delta commits on S3 rely on, checked against the server the end-to-end tests use."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import botocore.exceptions
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from pydantic import SecretStr

from shared.settings import StorageSettings
from shared.storage import DELTA_S3_CLIENT_OPTIONS, Lake
from tests.e2e.s3 import MotoS3

ROWS = pa.table({"code": ["010825", "0134"], "quantity": [1.5, 2.0]})


@pytest.fixture
def lake(s3: MotoS3) -> Lake:
    s3.create_bucket("nova-outage")
    return Lake.from_settings(s3.storage_settings("nova-outage"))


def test_a_stopped_server_is_unreachable_at_once_and_serves_the_same_lake_when_back(s3, lake):
    lake.write_parquet("bronze/x/a.parquet", ROWS)
    lake.write_delta("gold", "dim_item", ROWS, mode="append")
    assert lake.reachable()

    s3.stop()
    started = time.monotonic()
    assert not lake.reachable()
    assert time.monotonic() - started < 5  # refused: no waiting for timeouts
    with pytest.raises(OSError):
        lake.write_parquet("bronze/x/b.parquet", ROWS)
    with pytest.raises(OSError):
        lake.delta_table("gold", "dim_item")

    s3.start()
    assert lake.reachable()
    assert lake.read_parquet("bronze/x/a.parquet").equals(ROWS)
    table = lake.delta_table("gold", "dim_item")
    assert table is not None and table.version() == 0
    assert not lake.exists("bronze/x/b.parquet")  # the failed write left nothing behind


def test_a_missing_bucket_is_not_reachable(s3):
    lake = Lake.from_settings(s3.storage_settings("no-such-bucket"))
    assert not lake.reachable()


def test_the_server_refuses_a_conditional_put_over_an_existing_key(s3, lake):
    # What `aws_conditional_put=etag` relies on: PUT with If-None-Match: * must not replace.
    client = s3.client()
    client.put_object(Bucket="nova-outage", Key="k", Body=b"first", IfNoneMatch="*")
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        client.put_object(Bucket="nova-outage", Key="k", Body=b"second", IfNoneMatch="*")
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    assert client.get_object(Bucket="nova-outage", Key="k")["Body"].read() == b"first"


def test_a_commit_from_a_stale_table_does_not_overwrite_the_log_entry_it_raced(s3, lake):
    lake.write_delta("silver", "t", ROWS.slice(0, 1), mode="append")
    stale = lake.delta_table("silver", "t")  # at version 0
    lake.write_delta("silver", "t", ROWS.slice(1, 1), mode="append")  # takes version 1
    # This writer also tries version 1 first; the server refuses, deltalake moves on to 2.
    write_deltalake(stale, pa.table({"code": ["099999"], "quantity": [4.0]}), mode="append",
                    storage_options=lake._delta_options)  # fmt: skip
    table = lake.delta_table("silver", "t")
    assert table is not None and table.version() == 2
    codes = sorted(table.to_pyarrow_table()["code"].to_pylist())
    assert codes == ["010825", "0134", "099999"]


@pytest.fixture
def unresponsive_endpoint() -> Iterator[str]:
    """Accepts connections and never answers: a frozen server, or a network that drops replies."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def _lake_at(endpoint: str) -> Lake:
    return Lake.from_settings(
        StorageSettings(
            backend="s3",
            s3_endpoint_url=endpoint,
            s3_access_key=SecretStr("k"),
            s3_secret_key=SecretStr("s"),
        )
    )


def test_reachability_of_a_server_that_does_not_answer_is_decided_within_seconds(
    unresponsive_endpoint,
):
    lake = _lake_at(unresponsive_endpoint)
    started = time.monotonic()
    assert not lake.reachable()
    assert time.monotonic() - started < 10  # one attempt, no retries


@pytest.mark.slow
def test_a_delta_read_from_a_server_that_does_not_answer_gives_up_within_a_minute(
    unresponsive_endpoint,
):
    # deltalake's own default keeps retrying for 180 s: the API's version check (and so its
    # readiness) and a build would hang for three minutes before anyone heard of it.
    assert DELTA_S3_CLIENT_OPTIONS["retry_timeout"] == "30s"
    lake = _lake_at(unresponsive_endpoint)
    started = time.monotonic()
    with pytest.raises(OSError):
        lake.delta_table("gold", "dim_item")
    assert time.monotonic() - started < 70
