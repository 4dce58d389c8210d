"""The lake: the one place that knows where bronze, silver and gold live.

Bronze objects are plain Parquet written through `pyarrow.fs`; silver and gold are Delta tables
(Parquet plus a transaction log) so that readers never see half a commit and past versions stay
readable. The same code serves a local folder and any S3-compatible endpoint (MinIO).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from shared.settings import StorageSettings

Layer = Literal["bronze", "silver", "gold"]
ROW_GROUP_ROWS = 128 * 1024
# How deltalake's S3 client (Rust object_store) gives up. Its defaults retry one operation for
# up to 180 s: against a server that accepts connections but never answers, a version check or
# a build step then hangs for three minutes before anyone hears of it. Refused connections fail
# after its ten quick retries (a few seconds) either way; brief blips are still absorbed.
DELTA_S3_CLIENT_OPTIONS = {
    "connect_timeout": "5s",
    "timeout": "30s",  # one request, body included (object_store's default)
    "retry_timeout": "30s",
}
# pyarrow's S3 client (AWS SDK) already fails fast: a refused connection at once, a server that
# does not answer after three attempts of ~3 s. A reachability probe should answer sooner still.
PROBE_RETRY = pafs.AwsStandardS3RetryStrategy(max_attempts=1)


class LakePathError(ValueError):
    """A lake path tried to leave the lake (absolute, `..`, empty segment)."""


@dataclass(frozen=True)
class DeltaCommit:
    table: str
    version: int
    row_count: int


def _clean_relative(path: str) -> str:
    parts = path.split("/")
    if path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise LakePathError(f"not a clean lake-relative path: {path!r}")
    return path


class Lake:
    """Object storage for all three layers; construct with `Lake.from_settings`."""

    def __init__(
        self,
        filesystem: pafs.FileSystem,
        fs_root: str,
        uri_root: str,
        delta_storage_options: Mapping[str, str],
        probe: tuple[pafs.FileSystem, str] | None = None,
    ) -> None:
        self._fs = filesystem
        self._fs_root = fs_root.rstrip("/")
        self._uri_root = uri_root.rstrip("/")
        self._delta_options = dict(delta_storage_options)
        # What `reachable` looks at: the bucket (or the root folder), through a client that
        # does not retry.
        self._probe = probe or (filesystem, self._fs_root)

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> Lake:
        if settings.backend == "local":
            assert settings.local_root is not None, "NovaSettings derives local_root"
            root = settings.local_root.resolve()
            root.mkdir(parents=True, exist_ok=True)
            return cls(pafs.LocalFileSystem(), root.as_posix(), root.as_posix(), {})
        scheme, _, host = settings.s3_endpoint_url.partition("://")
        access_key = settings.s3_access_key.get_secret_value()
        secret_key = settings.s3_secret_key.get_secret_value()
        client = {
            "access_key": access_key or None,
            "secret_key": secret_key or None,
            "endpoint_override": host,
            "scheme": scheme,
            "region": settings.s3_region,
            "allow_bucket_creation": False,
        }
        filesystem = pafs.S3FileSystem(**client)
        probe = pafs.S3FileSystem(**client, retry_strategy=PROBE_RETRY)
        key_root = "/".join(p for p in (settings.s3_bucket, settings.s3_prefix.strip("/")) if p)
        options = {
            "AWS_ENDPOINT_URL": settings.s3_endpoint_url,
            "AWS_REGION": settings.s3_region,
            "AWS_ALLOW_HTTP": "true" if scheme == "http" else "false",
            # MinIO honours If-None-Match, which makes concurrent Delta commits safe without a
            # lock service.
            "aws_conditional_put": "etag",
            **DELTA_S3_CLIENT_OPTIONS,
        }
        if access_key:
            options["AWS_ACCESS_KEY_ID"] = access_key
            options["AWS_SECRET_ACCESS_KEY"] = secret_key
        return cls(filesystem, key_root, f"s3://{key_root}", options, (probe, settings.s3_bucket))

    def __repr__(self) -> str:  # never show storage options: they hold credentials
        return f"Lake({self._uri_root!r})"

    @property
    def location(self) -> str:
        """Where the lake lives, for a person reading an error; never credentials."""
        if self._uri_root.startswith("s3://"):
            return f"S3 {self._uri_root}"
        return f"folder {self._uri_root}"

    def reachable(self) -> bool:
        """Whether the storage answers and holds the lake's bucket (or root folder); one quick
        look that never raises. Services ask it after a failure: when the lake is away, the
        failure is not the file's or the event's fault, and they wait instead of giving up."""
        filesystem, root = self._probe
        try:
            return filesystem.get_file_info(root).type == pafs.FileType.Directory
        except Exception:  # pyarrow raises OSError subclasses; any failure means "not now"
            return False

    # --- plain objects (bronze) -------------------------------------------------------------

    def _fs_path(self, path: str) -> str:
        return f"{self._fs_root}/{_clean_relative(path)}"

    def exists(self, path: str) -> bool:
        return self._fs.get_file_info(self._fs_path(path)).type != pafs.FileType.NotFound

    def write_parquet(self, path: str, table: pa.Table) -> int:
        """Write `table` so that readers see the whole object or nothing; returns its size."""
        return self.write_parquet_batches(path, table.schema, table.to_batches())

    @contextmanager
    def _staged(self, path: str, suffix: str = "") -> Iterator[str]:
        """A staging path to write to; moved onto `path` on success, removed on failure.

        Locally a rename is atomic; on S3 a completed PUT is, but closing an upload completes
        it, so a failed write goes to a key aside and never reaches the target key.
        """
        target = self._fs_path(path)
        parent = target.rsplit("/", 1)[0]
        staging = (
            f"{parent}/.tmp-{uuid.uuid4().hex}{suffix}"
            if isinstance(self._fs, pafs.LocalFileSystem)
            else f"{self._fs_root}/_staging/{uuid.uuid4().hex}{suffix}"
        )
        self._fs.create_dir(parent, recursive=True)
        try:
            yield staging
            self._fs.move(staging, target)
        finally:
            if self._fs.get_file_info(staging).type != pafs.FileType.NotFound:
                self._fs.delete_file(staging)

    def write_parquet_batches(
        self, path: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch]
    ) -> int:
        """Stream batches into one Parquet object, visible only once complete; returns its size.

        Memory stays at one batch. If the batches raise (a bad row half-way through a file),
        nothing appears at `path` and the partial object is removed.
        """
        with (
            self._staged(path, ".parquet") as staging,
            pq.ParquetWriter(staging, schema, filesystem=self._fs, compression="zstd") as writer,
        ):
            # Small batches are gathered so that row groups stay large enough to scan fast.
            pending: list[pa.RecordBatch] = []
            pending_rows = 0
            for batch in batches:
                pending.append(batch)
                pending_rows += batch.num_rows
                if pending_rows >= ROW_GROUP_ROWS:
                    writer.write_table(pa.Table.from_batches(pending, schema))
                    pending, pending_rows = [], 0
            if pending:
                writer.write_table(pa.Table.from_batches(pending, schema))
        return self._fs.get_file_info(self._fs_path(path)).size or 0

    def delete_file(self, path: str) -> None:
        self._fs.delete_file(self._fs_path(path))

    def write_bytes(self, path: str, data: bytes) -> None:
        """A small whole object (a report); readers see it complete or not at all."""
        with self._staged(path) as staging, self._fs.open_output_stream(staging) as out:
            out.write(data)

    def read_bytes(self, path: str) -> bytes:
        with self._fs.open_input_stream(self._fs_path(path)) as stream:
            return stream.read()

    def read_parquet(self, path: str) -> pa.Table:
        return pq.read_table(self._fs_path(path), filesystem=self._fs)

    def list_files(self, prefix: str) -> list[str]:
        """Lake-relative paths of every object below `prefix`, sorted."""
        selector = pafs.FileSelector(self._fs_path(prefix), recursive=True, allow_not_found=True)
        infos = self._fs.get_file_info(selector)
        cut = len(self._fs_root) + 1
        return sorted(
            i.path[cut:]
            for i in infos
            if i.type == pafs.FileType.File and not i.base_name.startswith(".")
        )

    # --- Delta tables (silver, gold) --------------------------------------------------------

    def table_uri(self, layer: Layer, name: str) -> str:
        return f"{self._uri_root}/{layer}/{_clean_relative(name)}"

    def delta_table(self, layer: Layer, name: str, version: int | None = None) -> DeltaTable | None:
        """The table at its latest (or a given) version, or None when it was never written."""
        try:
            return DeltaTable(
                self.table_uri(layer, name), version=version, storage_options=self._delta_options
            )
        except TableNotFoundError:
            return None

    def delta_dataset(self, layer: Layer, name: str) -> pads.Dataset | None:
        table = self.delta_table(layer, name)
        return None if table is None else table.to_pyarrow_dataset()

    def write_delta(
        self,
        layer: Layer,
        name: str,
        data: pa.Table,
        *,
        mode: Literal["append", "overwrite"],
        predicate: str | None = None,
        partition_by: list[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> DeltaCommit:
        """Commit `data` atomically; `predicate` with overwrite replaces only matching rows."""
        existing = self.delta_table(layer, name)
        if existing is None:
            predicate = None  # nothing to replace yet: the first commit creates the table
        write_deltalake(
            existing if existing is not None else self.table_uri(layer, name),
            data,
            mode=mode,
            predicate=predicate,
            # Partitioning is fixed when the table is created; later writes follow it.
            partition_by=partition_by if existing is None else None,
            # A table may gain columns; history stays readable with the old schema.
            schema_mode="merge",
            storage_options=self._delta_options,
            commit_properties=CommitProperties(
                custom_metadata={k: str(v) for k, v in (metadata or {}).items()}
            ),
        )
        # Writing through an open table moves it to our own commit, even if others follow.
        table = existing if existing is not None else self.delta_table(layer, name)
        assert table is not None, "the write above created the table"
        return DeltaCommit(f"{layer}.{name}", table.version(), table.count())
