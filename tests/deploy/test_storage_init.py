"""`nova storage init` against a real S3-protocol server (moto's, started here)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from minio import Minio
from minio.commonconfig import ENABLED, Filter
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule
from moto.server import ThreadedMotoServer
from pydantic import SecretStr
from typer.testing import CliRunner

from services.cli.main import app
from services.cli.storage import (
    StorageInitError,
    bronze_expiry_days,
    init_storage,
    lake_rules,
    make_client,
)
from shared.settings import StorageSettings
from tests.conftest import free_port


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def settings_for(endpoint: str, bucket: str, prefix: str = "") -> StorageSettings:
    return StorageSettings(
        backend="s3",
        s3_endpoint_url=endpoint,
        s3_bucket=bucket,
        s3_prefix=prefix,
        s3_access_key=SecretStr("testing-key"),
        s3_secret_key=SecretStr("testing-secret"),
    )


def rules_by_id(client: Minio, bucket: str) -> dict[str, Rule]:
    config = client.get_bucket_lifecycle(bucket)
    assert config is not None
    return {rule.rule_id or "": rule for rule in config.rules}


def test_creates_bucket_and_lifecycle_rules_then_is_idempotent(s3_endpoint: str) -> None:
    settings = settings_for(s3_endpoint, "lake-one")
    client = make_client(settings)
    assert not client.bucket_exists("lake-one")

    first = init_storage(settings, bronze_retention_days=90, bronze_margin_days=30)

    assert first.created and first.lifecycle_changed
    assert client.bucket_exists("lake-one")
    rules = rules_by_id(client, "lake-one")
    assert set(rules) == {"nova:/:staging", "nova:/:multipart", "nova:/:bronze"}
    staging = rules["nova:/:staging"]
    assert staging.status == ENABLED
    assert staging.rule_filter is not None and staging.rule_filter.prefix == "_staging/"
    assert staging.expiration is not None and staging.expiration.days == 1
    multipart = rules["nova:/:multipart"]
    assert multipart.abort_incomplete_multipart_upload is not None
    assert multipart.abort_incomplete_multipart_upload.days_after_initiation == 1
    bronze = rules["nova:/:bronze"]
    assert bronze.rule_filter is not None and bronze.rule_filter.prefix == "bronze/"
    assert bronze.expiration is not None and bronze.expiration.days == 120
    assert first.not_kept == []

    second = init_storage(settings, bronze_retention_days=90, bronze_margin_days=30)

    assert not second.created and not second.lifecycle_changed
    assert rules_by_id(client, "lake-one").keys() == rules.keys()
    assert "bucket lake-one: exists" in second.lines()
    assert any("unchanged" in line for line in second.lines())


def test_prefix_rules_leave_other_tenants_rules_alone(s3_endpoint: str) -> None:
    settings = settings_for(s3_endpoint, "shared-bucket", prefix="/nova/lake/")
    client = make_client(settings)
    client.make_bucket("shared-bucket")
    theirs = Rule(
        ENABLED,
        rule_filter=Filter(prefix="other-app/tmp/"),
        rule_id="other-app-tmp",
        expiration=Expiration(days=7),
    )
    client.set_bucket_lifecycle("shared-bucket", LifecycleConfig([theirs]))

    report = init_storage(settings, bronze_retention_days=10.5, bronze_margin_days=5)

    assert not report.created
    rules = rules_by_id(client, "shared-bucket")
    assert rules["other-app-tmp"].expiration.days == 7  # type: ignore[union-attr]
    assert rules["nova:nova/lake:staging"].rule_filter.prefix == "nova/lake/_staging/"  # type: ignore[union-attr]
    assert rules["nova:nova/lake:multipart"].rule_filter.prefix == "nova/lake/"  # type: ignore[union-attr]
    bronze = rules["nova:nova/lake:bronze"]
    assert bronze.rule_filter.prefix == "nova/lake/bronze/"  # type: ignore[union-attr]
    assert bronze.expiration.days == 16  # type: ignore[union-attr]  # ceil(10.5) + 5

    # Retention 0 keeps bronze forever: our bronze rule goes, theirs and our others stay.
    forever = init_storage(settings, bronze_retention_days=0)
    assert forever.lifecycle_changed
    assert set(rules_by_id(client, "shared-bucket")) == {
        "other-app-tmp",
        "nova:nova/lake:staging",
        "nova:nova/lake:multipart",
    }


def test_unreachable_endpoint_fails_with_a_clear_message_after_bounded_retries() -> None:
    settings = settings_for(f"http://127.0.0.1:{free_port()}", "nowhere")
    started = time.monotonic()
    with pytest.raises(StorageInitError) as failure:
        init_storage(settings, bronze_retention_days=90, wait_seconds=1.5)
    elapsed = time.monotonic() - started
    message = str(failure.value)
    assert "cannot reach the S3 endpoint" in message
    assert settings.s3_endpoint_url in message
    assert "attempts" in message
    assert elapsed < 15


def test_cli_prints_what_it_did_and_fails_readably(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    for name, value in {
        "NOVA_STORAGE__BACKEND": "s3",
        "NOVA_STORAGE__S3_ENDPOINT_URL": s3_endpoint,
        "NOVA_STORAGE__S3_BUCKET": "cli-lake",
        "NOVA_STORAGE__S3_ACCESS_KEY": "testing-key",
        "NOVA_STORAGE__S3_SECRET_KEY": "testing-secret",
        "NOVA_INGESTOR__BRONZE_RETENTION_DAYS": "60",
    }.items():
        monkeypatch.setenv(name, value)

    first = runner.invoke(app, ["storage", "init"])
    assert first.exit_code == 0, first.output
    assert "bucket cli-lake: created" in first.output
    assert "expire bronze/ after 90 days" in first.output  # 60 + the default 30-day margin
    assert "lifecycle rules: set" in first.output

    again = runner.invoke(app, ["storage", "init"])
    assert again.exit_code == 0, again.output
    assert "bucket cli-lake: exists" in again.output
    assert "lifecycle rules: unchanged" in again.output

    monkeypatch.setenv("NOVA_STORAGE__S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    down = runner.invoke(app, ["storage", "init", "--wait-seconds", "1"])
    assert down.exit_code == 1
    assert "error: cannot reach the S3 endpoint" in down.output
    assert "testing-secret" not in down.output


def test_bronze_expiry_days() -> None:
    assert bronze_expiry_days(90, 30) == 120
    assert bronze_expiry_days(0.5, 0) == 1
    assert bronze_expiry_days(0, 30) is None
    assert [r.rule_id for r, _ in lake_rules("", 0)] == ["nova:/:staging", "nova:/:multipart"]
