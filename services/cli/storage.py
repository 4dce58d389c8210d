"""`nova storage init`: prepare the S3/MinIO bucket that holds the lake.

Creates the bucket when missing and sets the lake's lifecycle rules, both idempotently, so a
deployment can run it on every start (compose runs it as a one-shot before the services):

- `<prefix>/_staging/` objects expire after a day. Every write to the lake first goes to a
  staging key and is then moved onto its target (`shared.storage.Lake._staged`); a process
  killed between the two leaves the staging object behind, and nothing else ever removes it.
- Incomplete multipart uploads are aborted after a day (large Parquet objects are uploaded in
  parts; a killed writer leaves the parts). MinIO drops this action from a rule and instead
  aborts stale uploads itself (`api stale_uploads_expiry`, 24 h by default): the report says so.
- `<prefix>/bronze/` objects expire after the bronze retention plus a safety margin. This is a
  backstop, not the retention policy: the ingestor prunes bronze itself, and only objects whose
  rows are already in silver. The lifecycle rule cannot look into silver, so it waits longer
  (the margin) to leave time to repair events that did not reach silver (dead letters, a
  quality gate that failed, a transformer that was down) with `nova dlq replay` or
  `nova replay`, which read bronze. A retention of 0 days keeps bronze forever: no rule.

The rules carry fixed ids (`nova:<prefix>:...`), so rules that other tenants of the bucket set
are kept as they are; only ours are added or replaced.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import urlparse

import typer
import urllib3
from minio import Minio
from minio.commonconfig import ENABLED, Filter
from minio.error import MinioException, S3Error, ServerError
from minio.lifecycleconfig import (
    AbortIncompleteMultipartUpload,
    Expiration,
    LifecycleConfig,
    Rule,
)

from shared.logging import redact_credentials
from shared.settings import NovaSettings, StorageSettings

STAGING_DAYS = 1
MULTIPART_ABORT_DAYS = 1
DEFAULT_BRONZE_MARGIN_DAYS = 30
DEFAULT_WAIT_SECONDS = 60.0
# Answers of a server that is up but not ready yet (MinIO while its drives come online).
_NOT_READY_CODES = {
    "XMinioServerNotInitialized",
    "ServiceUnavailable",
    "SlowDown",
    "XMinioStorageNotReady",
    "InternalError",
}

storage_app = typer.Typer(
    help="The lake's object storage (S3/MinIO): bucket and lifecycle rules.",
    no_args_is_help=True,
)


class StorageInitError(RuntimeError):
    """The bucket could not be prepared; the message says why and what to check."""


@dataclass
class InitReport:
    bucket: str
    created: bool = False
    lifecycle_changed: bool = False
    rules: list[tuple[str, str]] = field(default_factory=list)  # (id, what it does)
    not_kept: list[str] = field(default_factory=list)  # rule ids the server dropped
    attempts: int = 1

    def lines(self) -> list[str]:
        out = [f"bucket {self.bucket}: {'created' if self.created else 'exists'}"]
        out.append(
            f"lifecycle rules: {'set' if self.lifecycle_changed else 'unchanged'} "
            f"({len(self.rules)} of ours)"
        )
        out += [f"  {rule_id}: {what}" for rule_id, what in self.rules]
        for rule_id in self.not_kept:
            out.append(
                f"  note: the server did not keep {rule_id} (MinIO aborts stale multipart "
                "uploads by itself, after 24 h by default)"
            )
        return out


def _key_prefix(prefix: str) -> str:
    cleaned = prefix.strip("/")
    return f"{cleaned}/" if cleaned else ""


def bronze_expiry_days(retention_days: float, margin_days: int) -> int | None:
    """Days after which the lifecycle rule removes bronze; None keeps it forever."""
    if retention_days <= 0:
        return None
    return math.ceil(retention_days) + max(0, margin_days)


def rule_tag(prefix: str) -> str:
    """Id prefix of our rules for a lake under `prefix` (other rules in the bucket are kept)."""
    return f"nova:{_key_prefix(prefix).rstrip('/') or '/'}:"


def lake_rules(
    prefix: str, retention_days: float, margin_days: int = DEFAULT_BRONZE_MARGIN_DAYS
) -> list[tuple[Rule, str]]:
    """Our lifecycle rules for a lake under `prefix`, each with what it does in words."""
    root = _key_prefix(prefix)
    tag = rule_tag(prefix)
    rules = [
        (
            Rule(
                ENABLED,
                rule_filter=Filter(prefix=f"{root}_staging/"),
                rule_id=f"{tag}staging",
                expiration=Expiration(days=STAGING_DAYS),
            ),
            f"expire {root}_staging/ after {STAGING_DAYS} day (writes that never completed)",
        ),
        (
            Rule(
                ENABLED,
                rule_filter=Filter(prefix=root),
                rule_id=f"{tag}multipart",
                abort_incomplete_multipart_upload=AbortIncompleteMultipartUpload(
                    MULTIPART_ABORT_DAYS
                ),
            ),
            f"abort incomplete multipart uploads under {root or 'the bucket'} after "
            f"{MULTIPART_ABORT_DAYS} day",
        ),
    ]
    days = bronze_expiry_days(retention_days, margin_days)
    if days is not None:
        rules.append(
            (
                Rule(
                    ENABLED,
                    rule_filter=Filter(prefix=f"{root}bronze/"),
                    rule_id=f"{tag}bronze",
                    expiration=Expiration(days=days),
                ),
                f"expire {root}bronze/ after {days} days (retention {retention_days:g} + "
                f"margin {margin_days}; backstop behind the ingestor's own pruning)",
            )
        )
    return rules


def _same(a: Rule, b: Rule) -> bool:
    def key(rule: Rule) -> tuple[object, ...]:
        return (
            rule.status,
            rule.rule_filter.prefix if rule.rule_filter else None,
            rule.expiration.days if rule.expiration else None,
            rule.abort_incomplete_multipart_upload.days_after_initiation
            if rule.abort_incomplete_multipart_upload
            else None,
            rule.noncurrent_version_expiration,
            rule.transition,
        )

    return key(a) == key(b)


def make_client(settings: StorageSettings) -> Minio:
    url = urlparse(settings.s3_endpoint_url)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise StorageInitError(
            f"NOVA_STORAGE__S3_ENDPOINT_URL must look like http://host:9000, "
            f"not {redact_credentials(settings.s3_endpoint_url)!r}"
        )
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=3.0, read=30.0),
        # Our loop retries with its own deadline; urllib3 only smooths over a single blip.
        retries=urllib3.Retry(total=1, backoff_factor=0.2, status_forcelist=[502, 503, 504]),
    )
    return Minio(
        url.netloc,
        access_key=settings.s3_access_key.get_secret_value() or None,
        secret_key=settings.s3_secret_key.get_secret_value() or None,
        secure=url.scheme == "https",
        region=settings.s3_region,
        http_client=http,
    )


def _transient(error: Exception) -> bool:
    if isinstance(error, S3Error):
        return error.code in _NOT_READY_CODES
    return isinstance(error, ServerError | urllib3.exceptions.HTTPError | OSError)


def _with_retry(
    action: Callable[[], bool],
    endpoint: str,
    wait_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[bool, int]:
    """Run `action` until it answers, while the server is unreachable or still starting."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.5
    attempt = 0
    while True:
        attempt += 1
        try:
            return action(), attempt
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as error:
            if not _transient(error):
                raise StorageInitError(f"{endpoint} refused the request: {error}") from error
            if time.monotonic() + delay > deadline:
                raise StorageInitError(
                    f"cannot reach the S3 endpoint {endpoint} after {attempt} attempts in "
                    f"{wait_seconds:g} s (is MinIO running and NOVA_STORAGE__S3_ENDPOINT_URL "
                    f"right?): {type(error).__name__}: {error}"
                ) from error
            sleep(delay)
            delay = min(delay * 2, 5.0)


def init_storage(
    settings: StorageSettings,
    bronze_retention_days: float,
    bronze_margin_days: int = DEFAULT_BRONZE_MARGIN_DAYS,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
) -> InitReport:
    """Create the bucket if missing and put our lifecycle rules on it; safe to run again."""
    client = make_client(settings)
    bucket = settings.s3_bucket
    endpoint = settings.s3_endpoint_url
    report = InitReport(bucket)

    exists, report.attempts = _with_retry(
        lambda: client.bucket_exists(bucket), endpoint, wait_seconds
    )
    if not exists:
        try:
            client.make_bucket(bucket, location=settings.s3_region)
            report.created = True
        except S3Error as error:
            # Another replica of this step created it between the two calls.
            if error.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise StorageInitError(f"cannot create bucket {bucket}: {error}") from error

    wanted = lake_rules(settings.s3_prefix, bronze_retention_days, bronze_margin_days)
    report.rules = [(rule.rule_id or "", what) for rule, what in wanted]
    ours = {rule.rule_id for rule, _ in wanted}
    tag = rule_tag(settings.s3_prefix)
    try:
        current = client.get_bucket_lifecycle(bucket)
    except MinioException as error:
        raise StorageInitError(f"cannot read the lifecycle of {bucket}: {error}") from error
    current_rules = list(current.rules) if current else []
    by_id = {rule.rule_id: rule for rule in current_rules}
    # Rules of other tenants of the bucket stay; ours are replaced (and ours that are no longer
    # wanted, such as the bronze rule after the retention became 0, are removed).
    others = [r for r in current_rules if not (r.rule_id or "").startswith(tag)]
    stale = [
        r for r in current_rules if (r.rule_id or "").startswith(tag) and r.rule_id not in ours
    ]
    unchanged = not stale and all(
        rule.rule_id in by_id and _same(rule, by_id[rule.rule_id]) for rule, _ in wanted
    )
    if unchanged:
        return report
    try:
        client.set_bucket_lifecycle(bucket, LifecycleConfig(others + [r for r, _ in wanted]))
    except S3Error as error:
        raise StorageInitError(f"cannot set the lifecycle of {bucket}: {error}") from error
    report.lifecycle_changed = True
    kept = client.get_bucket_lifecycle(bucket)
    kept_by_id = {rule.rule_id: rule for rule in (kept.rules if kept else [])}
    report.not_kept = [
        rule.rule_id or ""
        for rule, _ in wanted
        if rule.rule_id not in kept_by_id or not _same(rule, kept_by_id[rule.rule_id])
    ]
    return report


@storage_app.command("init")
def init(
    wait_seconds: Annotated[
        float,
        typer.Option(help="Keep retrying this long while the S3 endpoint is unreachable."),
    ] = DEFAULT_WAIT_SECONDS,
    bronze_retention_days: Annotated[
        float | None,
        typer.Option(
            help="Bronze retention (0: keep forever, no rule). "
            "Default: NOVA_INGESTOR__BRONZE_RETENTION_DAYS."
        ),
    ] = None,
    bronze_margin_days: Annotated[
        int,
        typer.Option(min=0, help="Days the lifecycle rule waits beyond the bronze retention."),
    ] = DEFAULT_BRONZE_MARGIN_DAYS,
) -> None:
    """Create the lake bucket if missing and set its lifecycle rules (idempotent)."""
    settings = NovaSettings()
    storage = settings.storage
    if storage.backend != "s3":
        assert storage.local_root is not None
        storage.local_root.mkdir(parents=True, exist_ok=True)
        typer.echo(
            f"storage backend is local ({storage.local_root}): folder ready; "
            "bucket and lifecycle rules apply to NOVA_STORAGE__BACKEND=s3 only"
        )
        return
    retention = (
        settings.ingestor.bronze_retention_days
        if bronze_retention_days is None
        else bronze_retention_days
    )
    typer.echo(
        f"preparing s3 bucket {storage.s3_bucket} at "
        f"{redact_credentials(storage.s3_endpoint_url)} ..."
    )
    try:
        report = init_storage(storage, retention, bronze_margin_days, wait_seconds)
    except StorageInitError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    if report.attempts > 1:
        typer.echo(f"endpoint answered after {report.attempts} attempts")
    for line in report.lines():
        typer.echo(line)
