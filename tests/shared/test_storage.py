"""Lake: Parquet objects and Delta tables on a local folder and on a real S3-protocol server."""

import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import SecretStr

from shared.settings import StorageSettings
from shared.storage import Lake, LakePathError

ROWS = pa.table(
    {
        "code": pa.array(["010825", "0134", "012000"], pa.string()),
        "quantity": pa.array([1.5, 2.0, 30.0], pa.float64()),
        "batch": pa.array(["a", "a", "b"], pa.string()),
    }
)


@pytest.fixture
def local_lake(tmp_path):
    return Lake.from_settings(StorageSettings(backend="local", local_root=tmp_path / "lake"))


def rows_of(table, sort_by="code"):
    return sorted(table.to_pylist(), key=lambda r: r[sort_by])


# --- local backend: plain objects -----------------------------------------------------------


def test_from_settings_creates_the_local_root(tmp_path):
    root = tmp_path / "deep" / "lake"
    Lake.from_settings(StorageSettings(backend="local", local_root=root))
    assert root.is_dir()


def test_parquet_round_trip_and_exists(local_lake):
    path = "bronze/erp_requisitions/year=2025/month=01/day=02/abc.parquet"
    assert not local_lake.exists(path)
    size = local_lake.write_parquet(path, ROWS)
    assert size > 0
    assert local_lake.exists(path)
    back = local_lake.read_parquet(path)
    assert back.equals(ROWS)
    assert back.column("code").to_pylist() == ["010825", "0134", "012000"]


def test_write_parquet_replaces_an_existing_object(local_lake):
    local_lake.write_parquet("bronze/x/a.parquet", ROWS)
    local_lake.write_parquet("bronze/x/a.parquet", ROWS.slice(0, 1))
    assert local_lake.read_parquet("bronze/x/a.parquet").num_rows == 1


def test_list_files_is_sorted_recursive_and_relative(local_lake, tmp_path):
    for path in (
        "bronze/b/2.parquet",
        "bronze/a/1.parquet",
        "bronze/a/deeper/3.parquet",
        "silver/other.parquet",
    ):
        local_lake.write_parquet(path, ROWS)
    assert local_lake.list_files("bronze") == [
        "bronze/a/1.parquet",
        "bronze/a/deeper/3.parquet",
        "bronze/b/2.parquet",
    ]
    assert local_lake.list_files("bronze/a") == ["bronze/a/1.parquet", "bronze/a/deeper/3.parquet"]
    assert local_lake.list_files("nothing/here") == []
    # hidden files (e.g. a staging file) are not listed
    (tmp_path / "lake" / "bronze" / "a" / ".hidden").write_bytes(b"x")
    assert "bronze/a/.hidden" not in local_lake.list_files("bronze")


def test_no_staging_files_are_left_behind(local_lake, tmp_path):
    for index in range(3):
        local_lake.write_parquet(f"bronze/x/{index}.parquet", ROWS)
    leftovers = [p for p in (tmp_path / "lake").rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []


def test_failed_write_leaves_neither_target_nor_staging_file(local_lake, tmp_path):
    class Unwritable:  # pyarrow cannot write this: the write must fail cleanly
        schema = None

    with pytest.raises(Exception):  # noqa: B017 - any pyarrow error will do
        local_lake.write_parquet("bronze/x/broken.parquet", Unwritable())
    assert not local_lake.exists("bronze/x/broken.parquet")
    leftovers = [p for p in (tmp_path / "lake").rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []


@pytest.mark.parametrize(
    "bad",
    [
        "../outside.parquet",
        "bronze/../../outside.parquet",
        "/etc/passwd",
        "bronze//x.parquet",
        "bronze/./x.parquet",
        "",
        "bronze/",
    ],
)
def test_paths_that_leave_the_lake_are_refused(local_lake, tmp_path, bad):
    with pytest.raises(LakePathError):
        local_lake.write_parquet(bad, ROWS)
    with pytest.raises(LakePathError):
        local_lake.read_parquet(bad)
    with pytest.raises(LakePathError):
        local_lake.exists(bad)
    assert not (tmp_path / "outside.parquet").exists()


@pytest.mark.parametrize("bad", ["../evil", "/abs", "a/../b", ""])
def test_table_names_that_leave_the_lake_are_refused(local_lake, bad):
    with pytest.raises(LakePathError):
        local_lake.table_uri("gold", bad)
    with pytest.raises(LakePathError):
        local_lake.write_delta("gold", bad, ROWS, mode="append")


def test_repr_does_not_show_credentials():
    lake = Lake.from_settings(
        StorageSettings(
            backend="s3",
            s3_endpoint_url="http://127.0.0.1:1",
            s3_access_key=SecretStr("visible-access-key"),
            s3_secret_key=SecretStr("visible-secret-key"),
        )
    )
    assert "visible" not in repr(lake)
    assert "visible" not in str(lake)


# --- local backend: Delta tables ------------------------------------------------------------


def test_delta_table_is_none_when_never_written(local_lake):
    assert local_lake.delta_table("gold", "dim_item") is None
    assert local_lake.delta_dataset("gold", "dim_item") is None


def delta_round_trip(lake):
    """The same scenario on every backend."""
    first = lake.write_delta("silver", "requisitions", ROWS, mode="append")
    assert (first.table, first.version, first.row_count) == ("silver.requisitions", 0, 3)

    more = pa.table(
        {
            "code": pa.array(["099999"], pa.string()),
            "quantity": pa.array([4.0], pa.float64()),
            "batch": pa.array(["c"], pa.string()),
        }
    )
    second = lake.write_delta("silver", "requisitions", more, mode="append")
    assert (second.version, second.row_count) == (1, 4)

    replacement = pa.table(
        {
            "code": pa.array(["010825", "077777"], pa.string()),
            "quantity": pa.array([100.0, 200.0], pa.float64()),
            "batch": pa.array(["a", "a"], pa.string()),
        }
    )
    third = lake.write_delta(
        "silver",
        "requisitions",
        replacement,
        mode="overwrite",
        predicate="batch = 'a'",
        metadata={"build_id": "build-3", "rows_written": 2},
    )
    assert (third.version, third.row_count) == (2, 4)

    latest = lake.delta_table("silver", "requisitions")
    assert latest is not None
    assert latest.version() == 2
    assert rows_of(latest.to_pyarrow_table()) == [
        {"code": "010825", "quantity": 100.0, "batch": "a"},
        {"code": "012000", "quantity": 30.0, "batch": "b"},  # batch b untouched
        {"code": "077777", "quantity": 200.0, "batch": "a"},
        {"code": "099999", "quantity": 4.0, "batch": "c"},  # batch c untouched
    ]
    assert rows_of(lake.delta_dataset("silver", "requisitions").to_table()) == rows_of(
        latest.to_pyarrow_table()
    )

    old = lake.delta_table("silver", "requisitions", version=0)
    assert old.version() == 0
    assert rows_of(old.to_pyarrow_table()) == rows_of(ROWS)

    (commit,) = latest.history(1)
    assert commit["build_id"] == "build-3"
    assert commit["rows_written"] == "2"  # custom metadata values are stored as text


def test_delta_append_overwrite_predicate_versions_and_time_travel(local_lake):
    delta_round_trip(local_lake)


def concurrent_appends(make_lake, writers=3, commits=3):
    """Writers with their own Lake append at the same time: no commit may be lost."""
    make_lake().write_delta(
        "silver",
        "concurrent",
        pa.table({"writer": pa.array([], pa.int64()), "n": pa.array([], pa.int64())}),
        mode="append",
    )
    errors = []

    def work(writer):
        lake = make_lake()
        for n in range(commits):
            try:
                lake.write_delta(
                    "silver", "concurrent", pa.table({"writer": [writer], "n": [n]}), mode="append"
                )
            except Exception as exc:  # collected and asserted below
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    table = make_lake().delta_table("silver", "concurrent")
    assert table.version() == writers * commits
    rows = {(r["writer"], r["n"]) for r in table.to_pyarrow_table().to_pylist()}
    assert rows == {(w, n) for w in range(writers) for n in range(commits)}


def test_concurrent_appends_lose_no_commit(tmp_path):
    settings = StorageSettings(backend="local", local_root=tmp_path / "lake")
    concurrent_appends(lambda: Lake.from_settings(settings))


def test_first_write_with_a_predicate_creates_the_table(local_lake):
    commit = local_lake.write_delta(
        "silver", "fresh", ROWS, mode="overwrite", predicate="batch = 'a'"
    )
    assert (commit.version, commit.row_count) == (0, 3)
    assert rows_of(local_lake.delta_table("silver", "fresh").to_pyarrow_table()) == rows_of(ROWS)


def test_overwrite_without_predicate_replaces_everything(local_lake):
    local_lake.write_delta("gold", "dim", ROWS, mode="overwrite")
    commit = local_lake.write_delta("gold", "dim", ROWS.slice(2), mode="overwrite")
    assert (commit.version, commit.row_count) == (1, 1)
    assert local_lake.delta_table("gold", "dim").to_pyarrow_table().column("code").to_pylist() == [
        "012000"
    ]


def test_append_merges_a_new_column(local_lake):
    local_lake.write_delta("silver", "evolving", ROWS, mode="append")
    wider = ROWS.slice(0, 1).append_column("note", pa.array(["new"], pa.string()))
    commit = local_lake.write_delta("silver", "evolving", wider, mode="append")
    table = local_lake.delta_table("silver", "evolving").to_pyarrow_table()
    assert commit.row_count == 4
    assert "note" in table.column_names
    notes = table.column("note").to_pylist()
    assert notes.count("new") == 1
    assert notes.count(None) == 3


def test_delta_tables_live_under_their_layer(local_lake, tmp_path):
    local_lake.write_delta("gold", "dim_item", ROWS, mode="overwrite")
    assert (tmp_path / "lake" / "gold" / "dim_item" / "_delta_log").is_dir()
    root = (tmp_path / "lake").resolve()
    assert local_lake.table_uri("gold", "dim_item") == f"{root}/gold/dim_item"
    assert local_lake.delta_table("silver", "dim_item") is None


# --- S3 backend against moto's server -------------------------------------------------------


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    port = _free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with Path(log_path).open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # moto's imports take seconds, more when loaded
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"moto server did not start:\n{Path(log_path).read_text()}"
                    ) from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def s3_lake(s3_endpoint):
    import boto3

    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    settings = StorageSettings(
        backend="s3",
        s3_endpoint_url=s3_endpoint,
        s3_bucket=bucket,
        s3_prefix="nova/",
        s3_access_key=SecretStr("testing"),
        s3_secret_key=SecretStr("testing"),
    )
    return Lake.from_settings(settings), bucket, s3_endpoint, settings


def test_s3_parquet_round_trip_and_listing(s3_lake):
    lake, bucket, endpoint, _ = s3_lake
    path = "bronze/erp_requisitions/year=2025/month=01/day=02/abc.parquet"
    assert not lake.exists(path)
    assert lake.write_parquet(path, ROWS) > 0
    lake.write_parquet("bronze/erp_requisitions/year=2025/month=01/day=01/old.parquet", ROWS)
    assert lake.exists(path)
    assert lake.read_parquet(path).equals(ROWS)
    assert lake.list_files("bronze") == [
        "bronze/erp_requisitions/year=2025/month=01/day=01/old.parquet",
        path,
    ]
    assert lake.list_files("silver") == []
    assert repr(lake) == f"Lake('s3://{bucket}/nova')"

    import boto3

    keys = [
        o["Key"]
        for o in boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        ).list_objects_v2(Bucket=bucket)["Contents"]
    ]
    assert f"nova/{path}" in keys  # the prefix is honoured


def test_s3_path_escape_is_refused(s3_lake):
    lake, _, _, _ = s3_lake
    with pytest.raises(LakePathError):
        lake.write_parquet("../other-bucket/x.parquet", ROWS)


def test_s3_delta_append_overwrite_predicate_versions_and_time_travel(s3_lake):
    lake, _, _, _ = s3_lake
    assert lake.delta_table("silver", "requisitions") is None
    delta_round_trip(lake)


def test_s3_concurrent_appends_lose_no_commit(s3_lake):
    # Safe only if the server honours conditional PUTs (If-None-Match) for the Delta log.
    _, _, _, settings = s3_lake
    concurrent_appends(lambda: Lake.from_settings(settings))


def _batches_then_failure(rows: pa.Table, good_batches: int):
    """Batches like a streamed CSV whose line further down breaks the contract."""
    for _ in range(good_batches):
        yield from rows.to_batches()
    raise ValueError("a bad value further down the file")


def _all_keys(endpoint: str, bucket: str) -> list[str]:
    import boto3

    listing = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).list_objects_v2(Bucket=bucket)
    return [o["Key"] for o in listing.get("Contents", [])]


def test_streamed_write_gathers_batches_and_a_failure_leaves_nothing_locally(local_lake, tmp_path):
    path = "bronze/x/streamed.parquet"
    batches = [b for _ in range(5) for b in ROWS.to_batches()]
    assert local_lake.write_parquet_batches(path, ROWS.schema, batches) > 0
    assert local_lake.read_parquet(path).num_rows == 5 * ROWS.num_rows
    with pytest.raises(ValueError, match="further down"):
        local_lake.write_parquet_batches("bronze/x/broken.parquet", ROWS.schema,
                                         _batches_then_failure(ROWS, 3))  # fmt: skip
    assert not local_lake.exists("bronze/x/broken.parquet")
    assert [p.name for p in (tmp_path / "lake").rglob("*") if p.is_file()] == ["streamed.parquet"]


def test_s3_streamed_write_failure_leaves_no_object_not_even_staging(s3_lake):
    lake, bucket, endpoint, _ = s3_lake
    good = "bronze/x/year=2025/month=01/day=01/good.parquet"
    assert lake.write_parquet_batches(good, ROWS.schema, ROWS.to_batches()) > 0
    with pytest.raises(ValueError, match="further down"):
        lake.write_parquet_batches("bronze/x/broken.parquet", ROWS.schema,
                                   _batches_then_failure(ROWS, 2))  # fmt: skip
    # pyarrow marks directories with empty `x/` keys; no data object may be left over.
    objects = [k for k in _all_keys(endpoint, bucket) if not k.endswith("/")]
    assert objects == [f"nova/{good}"]


def test_bytes_round_trip_locally_and_on_s3(local_lake, s3_lake):
    for lake in (local_lake, s3_lake[0]):
        lake.write_bytes("reports/quality/b1.html", "<html>relatório</html>".encode())
        assert lake.read_bytes("reports/quality/b1.html").decode() == "<html>relatório</html>"
        lake.delete_file("reports/quality/b1.html")
        assert not lake.exists("reports/quality/b1.html")


def test_a_lake_says_where_it_lives_without_credentials(tmp_path):
    local = Lake.from_settings(StorageSettings(backend="local", local_root=tmp_path))
    assert local.location == f"folder {tmp_path.resolve().as_posix()}"
    s3 = Lake.from_settings(
        StorageSettings(
            backend="s3",
            s3_endpoint_url="http://127.0.0.1:9",
            s3_bucket="nova",
            s3_access_key=SecretStr("ak"),
            s3_secret_key=SecretStr("Sup3r-s3cret"),
        )
    )
    assert s3.location == "S3 s3://nova"
