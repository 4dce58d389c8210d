"""NovaSettings: NOVA_* variables, nested sections, derived paths and secrets."""

import os
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from shared.settings import (
    ApiSettings,
    ForecasterSettings,
    IngestorSettings,
    LogSettings,
    NatsSettings,
    NovaSettings,
    StorageSettings,
    TransformerSettings,
    environment_variable_names,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No NOVA_* variable from the caller's shell and no `.env` from the repository."""
    for name in list(os.environ):
        if name.startswith("NOVA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_without_any_variable():
    settings = NovaSettings()
    assert settings.var_dir == Path("var")
    assert settings.nats.url == "nats://127.0.0.1:4222"
    assert settings.storage.backend == "local"
    assert settings.api.port == 8000
    assert settings.log.format == "auto"


def test_top_level_variable_uses_nova_prefix(monkeypatch, tmp_path):
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "unprefixed"))  # must be ignored
    monkeypatch.setenv("NOVA_VAR_DIR", str(tmp_path / "state"))
    assert NovaSettings().var_dir == tmp_path / "state"


def test_nested_variables_use_double_underscore(monkeypatch):
    monkeypatch.setenv("NOVA_NATS__URL", "nats://broker:4333")
    monkeypatch.setenv("NOVA_STORAGE__BACKEND", "s3")
    monkeypatch.setenv("NOVA_STORAGE__S3_BUCKET", "other-bucket")
    monkeypatch.setenv("NOVA_INGESTOR__POLLING", "true")
    monkeypatch.setenv("NOVA_INGESTOR__STABLE_SECONDS", "2.5")
    monkeypatch.setenv("NOVA_TRANSFORMER__MAX_DELIVER", "9")
    monkeypatch.setenv("NOVA_API__PORT", "8123")
    monkeypatch.setenv("NOVA_LOG__LEVEL", "DEBUG")
    settings = NovaSettings()
    assert settings.nats.url == "nats://broker:4333"
    assert settings.nats.stream == "NOVA"  # untouched siblings keep their defaults
    assert settings.storage.backend == "s3"
    assert settings.storage.s3_bucket == "other-bucket"
    assert settings.ingestor.polling is True
    assert settings.ingestor.stable_seconds == 2.5
    assert settings.transformer.max_deliver == 9
    assert settings.api.port == 8123
    assert settings.log.level == "DEBUG"


def test_invalid_value_is_rejected(monkeypatch):
    monkeypatch.setenv("NOVA_API__PORT", "70000")
    with pytest.raises(ValidationError):
        NovaSettings()


def test_paths_are_derived_from_var_dir(monkeypatch, tmp_path):
    root = tmp_path / "state"
    monkeypatch.setenv("NOVA_VAR_DIR", str(root))
    settings = NovaSettings()
    assert settings.storage.local_root == root / "lake"
    assert settings.ingestor.inbox_dir == root / "inbox"
    assert settings.ingestor.archive_dir == root / "archive"
    assert settings.ingestor.quarantine_dir == root / "quarantine"
    assert settings.nats_store_dir == root / "nats"
    assert settings.log_dir == root / "log"


def test_explicit_path_override_wins_over_var_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("NOVA_VAR_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("NOVA_INGESTOR__INBOX_DIR", str(tmp_path / "share" / "drop"))
    monkeypatch.setenv("NOVA_STORAGE__LOCAL_ROOT", str(tmp_path / "bigdisk" / "lake"))
    settings = NovaSettings()
    assert settings.ingestor.inbox_dir == tmp_path / "share" / "drop"
    assert settings.storage.local_root == tmp_path / "bigdisk" / "lake"
    # the ones not overridden still follow NOVA_VAR_DIR
    assert settings.ingestor.archive_dir == tmp_path / "state" / "archive"
    assert settings.ingestor.quarantine_dir == tmp_path / "state" / "quarantine"


def test_constructor_override_wins_over_var_dir(tmp_path):
    settings = NovaSettings(
        var_dir=tmp_path / "state",
        ingestor=IngestorSettings(archive_dir=tmp_path / "elsewhere"),
    )
    assert settings.ingestor.archive_dir == tmp_path / "elsewhere"
    assert settings.ingestor.inbox_dir == tmp_path / "state" / "inbox"


def test_default_sections_are_not_shared_between_instances(monkeypatch, tmp_path):
    # The after-validator fills paths in place; a second instance must not see the first's.
    monkeypatch.setenv("NOVA_VAR_DIR", str(tmp_path / "one"))
    first = NovaSettings()
    monkeypatch.setenv("NOVA_VAR_DIR", str(tmp_path / "two"))
    second = NovaSettings()
    assert first.storage.local_root == tmp_path / "one" / "lake"
    assert second.storage.local_root == tmp_path / "two" / "lake"
    assert second.ingestor.inbox_dir == tmp_path / "two" / "inbox"


def test_dotenv_file_is_read_and_environment_wins(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("NOVA_API__PORT=8201\nNOVA_NATS__STREAM=FROMFILE\n")
    monkeypatch.setenv("NOVA_NATS__STREAM", "FROMENV")
    settings = NovaSettings()
    assert settings.api.port == 8201
    assert settings.nats.stream == "FROMENV"


def test_secrets_never_appear_in_repr_str_or_json(monkeypatch):
    access, secret = "AKIAVERYSPECIALKEY", "sup3r-s3cr3t-value"
    monkeypatch.setenv("NOVA_STORAGE__S3_ACCESS_KEY", access)
    monkeypatch.setenv("NOVA_STORAGE__S3_SECRET_KEY", secret)
    settings = NovaSettings()
    assert isinstance(settings.storage.s3_secret_key, SecretStr)
    assert settings.storage.s3_access_key.get_secret_value() == access
    assert settings.storage.s3_secret_key.get_secret_value() == secret
    renderings = [
        repr(settings),
        str(settings),
        repr(settings.storage),
        str(settings.storage),
        settings.model_dump_json(),
        settings.storage.model_dump_json(),
        str(settings.model_dump()),
    ]
    for text in renderings:
        assert access not in text
        assert secret not in text


def test_environment_variable_names_lists_every_field():
    names = environment_variable_names()
    assert len(names) == len(set(names))
    expected = {"NOVA_VAR_DIR"}
    sections = {
        "nats": NatsSettings,
        "storage": StorageSettings,
        "ingestor": IngestorSettings,
        "transformer": TransformerSettings,
        "forecaster": ForecasterSettings,
        "api": ApiSettings,
        "log": LogSettings,
    }
    for section, model in sections.items():
        expected |= {f"NOVA_{section.upper()}__{field.upper()}" for field in model.model_fields}
    assert set(names) == expected
    # Every top-level field of NovaSettings is covered (nothing added without a name).
    for field_name, field in NovaSettings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            assert field_name in sections
        else:
            assert f"NOVA_{field_name.upper()}" in names
    assert names[0] == "NOVA_VAR_DIR"
    assert "NOVA_STORAGE__S3_SECRET_KEY" in names


def test_every_listed_variable_is_actually_read(monkeypatch, tmp_path):
    """Setting each listed name to a non-default value changes what NovaSettings returns."""
    values = {
        "NOVA_VAR_DIR": str(tmp_path / "v"),
        "NOVA_NATS__URL": "nats://x:1",
        "NOVA_NATS__STREAM": "S2",
        "NOVA_NATS__DUPLICATE_WINDOW_SECONDS": "7",
        "NOVA_NATS__CONNECT_TIMEOUT_SECONDS": "3",
        "NOVA_NATS__MAX_AGE_DAYS": "2",
        "NOVA_NATS__DLQ_STREAM": "D2",
        "NOVA_NATS__DLQ_MAX_AGE_DAYS": "3",
        "NOVA_NATS__REPLICAS": "3",
        "NOVA_NATS__USER": "nova",
        "NOVA_NATS__PASSWORD": "pw",
        "NOVA_STORAGE__BACKEND": "s3",
        "NOVA_STORAGE__LOCAL_ROOT": str(tmp_path / "lr"),
        "NOVA_STORAGE__S3_ENDPOINT_URL": "http://minio:9001",
        "NOVA_STORAGE__S3_BUCKET": "b2",
        "NOVA_STORAGE__S3_PREFIX": "pre",
        "NOVA_STORAGE__S3_REGION": "sa-east-1",
        "NOVA_STORAGE__S3_ACCESS_KEY": "ak",
        "NOVA_STORAGE__S3_SECRET_KEY": "sk",
        "NOVA_INGESTOR__INBOX_DIR": str(tmp_path / "i"),
        "NOVA_INGESTOR__ARCHIVE_DIR": str(tmp_path / "a"),
        "NOVA_INGESTOR__QUARANTINE_DIR": str(tmp_path / "q"),
        "NOVA_INGESTOR__STABLE_SECONDS": "4",
        "NOVA_INGESTOR__POLLING": "true",
        "NOVA_INGESTOR__POLL_INTERVAL_SECONDS": "5",
        "NOVA_INGESTOR__MAX_FILE_BYTES": "12",
        "NOVA_INGESTOR__MAX_UNCOMPRESSED_BYTES": "13",
        "NOVA_INGESTOR__LEDGER_BUCKET": "l2",
        "NOVA_INGESTOR__METRICS_PORT": "14",
        "NOVA_INGESTOR__METRICS_HOST": "10.0.0.7",
        "NOVA_INGESTOR__BRONZE_RETENTION_DAYS": "15",
        "NOVA_TRANSFORMER__DURABLE_NAME": "t2",
        "NOVA_TRANSFORMER__MAX_DELIVER": "2",
        "NOVA_TRANSFORMER__ACK_WAIT_SECONDS": "6",
        "NOVA_FORECASTER__BUCKET": "month",
        "NOVA_FORECASTER__HORIZON": "6",
        "NOVA_FORECASTER__SERVICE_LEVEL": "0.9",
        "NOVA_FORECASTER__JOBS": "2",
        "NOVA_FORECASTER__BACKTEST_ORIGINS": "2",
        "NOVA_FORECASTER__INTERVAL_HOURS": "24",
        "NOVA_FORECASTER__SITE_MIN_NONZERO_PERIODS": "3",
        "NOVA_FORECASTER__CANDIDATES": "Zero,Pooled",
        "NOVA_FORECASTER__METRICS_PORT": "16",
        "NOVA_FORECASTER__METRICS_HOST": "0.0.0.0",
        "NOVA_API__HOST": "0.0.0.0",
        "NOVA_API__PORT": "9",
        "NOVA_API__MAX_PAGE_SIZE": "10",
        "NOVA_API__VERSION_CHECK_SECONDS": "11",
        "NOVA_API__KEYS": "k1,k2",
        "NOVA_API__CORS_ORIGINS": "http://localhost:3000",
        "NOVA_API__MAX_DATE_RANGE_DAYS": "30",
        "NOVA_API__MAX_QUERY_BYTES": "100",
        "NOVA_API__CACHE_ENTRIES": "3",
        "NOVA_API__CACHE_MAX_AGE_SECONDS": "1",
        "NOVA_API__RECENT_INGESTIONS": "7",
        "NOVA_API__FOLLOW_EVENTS": "false",
        "NOVA_LOG__LEVEL": "ERROR",
        "NOVA_LOG__FORMAT": "json",
    }
    assert set(values) == set(environment_variable_names())
    # valid only together: each is changed from a set pair
    paired = {"NOVA_NATS__USER": "u0", "NOVA_NATS__PASSWORD": "p0"}
    for name, value in values.items():
        base = paired if name in paired else {}
        for other, other_value in base.items():
            monkeypatch.setenv(other, other_value)
        before = NovaSettings()
        monkeypatch.setenv(name, value)
        changed = NovaSettings()
        for other in {name, *base}:
            monkeypatch.delenv(other)
        assert changed.model_dump() != before.model_dump(), f"{name} was not read"


@pytest.mark.parametrize("folder", ["archive_dir", "quarantine_dir"])
def test_archive_or_quarantine_inside_the_inbox_is_refused(tmp_path, folder):
    with pytest.raises(ValueError, match=f"{folder}.*must not be inside the inbox"):
        NovaSettings(
            var_dir=tmp_path,
            ingestor={"inbox_dir": tmp_path / "inbox", folder: tmp_path / "inbox" / "done"},
        )


def test_nats_credentials_are_optional_secret_and_only_come_in_pairs(monkeypatch):
    plain = NovaSettings()
    assert plain.nats.user is None and plain.nats.password is None
    assert plain.nats.auth_options() == {}  # the embedded server: no credentials sent
    monkeypatch.setenv("NOVA_NATS__USER", "nova")
    monkeypatch.setenv("NOVA_NATS__PASSWORD", "n4ts-s3cr3t")
    settings = NovaSettings()
    assert isinstance(settings.nats.password, SecretStr)
    assert settings.nats.auth_options() == {"user": "nova", "password": "n4ts-s3cr3t"}
    for text in (repr(settings), str(settings.nats), settings.model_dump_json()):
        assert "n4ts-s3cr3t" not in text


@pytest.mark.parametrize(
    ("given", "missing"), [("NOVA_NATS__USER", "password"), ("NOVA_NATS__PASSWORD", "user")]
)
def test_a_nats_user_without_password_or_the_reverse_is_refused(monkeypatch, given, missing):
    monkeypatch.setenv(given, "value")
    with pytest.raises(ValidationError, match=f"without a {missing}: set both NOVA_NATS__USER"):
        NovaSettings()
    with pytest.raises(ValidationError, match=f"without a {missing}"):
        NatsSettings(**{given.removeprefix("NOVA_NATS__").lower(): "value"})


def test_empty_nats_credentials_mean_none(monkeypatch):
    monkeypatch.setenv("NOVA_NATS__USER", "")
    monkeypatch.setenv("NOVA_NATS__PASSWORD", "")
    assert NovaSettings().nats.auth_options() == {}


@pytest.mark.parametrize(
    ("host", "keys", "open_"),
    [
        ("127.0.0.1", "", False),
        ("::1", "", False),
        ("localhost", "", False),
        ("0.0.0.0", "", True),
        ("10.0.0.7", "", True),
        ("api.example", "", True),
        ("0.0.0.0", "k1", False),
    ],
)
def test_an_api_bound_beyond_loopback_without_keys_is_open_to_the_network(host, keys, open_):
    assert ApiSettings(host=host, keys=keys).open_to_the_network is open_
