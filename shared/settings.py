"""Typed settings for every service, read from `NOVA_*` environment variables.

Nothing here builds a settings instance at import time: each entry point calls
`NovaSettings()` once and passes the sections it needs down to the code it wires.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class NatsSettings(BaseModel):
    url: str = Field(
        "nats://127.0.0.1:4222",
        description="NATS server URL the services connect to; a cluster's servers comma-separated.",
    )
    stream: str = Field("NOVA", description="JetStream stream that stores every nova.v1 event.")
    duplicate_window_seconds: float = Field(
        24 * 3600,
        description="How long JetStream remembers a Nats-Msg-Id to drop a re-published event.",
    )
    connect_timeout_seconds: float = Field(10.0, description="Give up connecting after this long.")
    max_age_days: float = Field(
        30.0, gt=1, description="Events older than this leave the stream (bounded disk use)."
    )
    dlq_stream: str = Field(
        "NOVA_DLQ", description="JetStream stream of dead letters: events no retry could process."
    )
    dlq_max_age_days: float = Field(
        365.0, gt=1, description="Dead letters older than this leave the dead-letter stream."
    )

    @property
    def servers(self) -> list[str]:
        """`url` as the list of servers a client may connect to."""
        return [u.strip() for u in self.url.split(",") if u.strip()]

    replicas: int = Field(
        1,
        ge=1,
        le=5,
        description="Copies of every stream and KV bucket in a NATS cluster (3 survives the "
        "loss of one node); 1 on a single server.",
    )
    user: str | None = Field(
        None,
        description="User the services authenticate to NATS as, together with `password`; "
        "unset: no authentication (the embedded `nova up` server).",
    )
    password: SecretStr | None = Field(
        None, description="Password of the NATS `user`; never logged."
    )

    @field_validator("user", "password", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `NOVA_NATS__USER=` in a .env file means "no user", not a user named "".
        return None if value == "" else value

    @model_validator(mode="after")
    def _user_and_password_together(self) -> NatsSettings:
        if (self.user is None) != (self.password is None):
            given, missing = ("user", "password") if self.password is None else ("password", "user")
            raise ValueError(
                f"NATS {given} without a {missing}: set both NOVA_NATS__USER and "
                "NOVA_NATS__PASSWORD, or neither (no authentication)"
            )
        return self

    def auth_options(self) -> dict[str, str]:
        """The credentials as keyword arguments of nats-py's `connect` (shared.broker; the
        transformer hands them to FastStream): empty without a user, so none are sent."""
        if self.user is None or self.password is None:
            return {}
        return {"user": self.user, "password": self.password.get_secret_value()}


class StorageSettings(BaseModel):
    backend: Literal["local", "s3"] = Field(
        "local", description="Lake backend: local folder or S3."
    )
    local_root: Path | None = Field(None, description="Lake folder for the local backend.")
    s3_endpoint_url: str = Field("http://127.0.0.1:9000", description="S3/MinIO endpoint URL.")
    s3_bucket: str = Field("nova-lake", description="Bucket that holds the lake.")
    s3_prefix: str = Field("", description="Key prefix inside the bucket (empty for the root).")
    s3_region: str = Field("us-east-1", description="S3 region (MinIO accepts any).")
    s3_access_key: SecretStr = Field(SecretStr(""), description="S3 access key id.")
    s3_secret_key: SecretStr = Field(SecretStr(""), description="S3 secret access key.")


class IngestorSettings(BaseModel):
    inbox_dir: Path | None = Field(None, description="Drop folder watched for ERP exports.")
    archive_dir: Path | None = Field(None, description="Where ingested originals are moved.")
    quarantine_dir: Path | None = Field(None, description="Where rejected files are moved.")
    stable_seconds: float = Field(
        1.0, ge=0, description="A file is read once its size and mtime stayed unchanged this long."
    )
    polling: bool = Field(
        False, description="Poll the inbox instead of inotify (SMB/NFS shares send no events)."
    )
    poll_interval_seconds: float = Field(1.0, gt=0, description="Polling period when polling.")
    max_file_bytes: int = Field(
        1024**3, gt=0, description="Files larger than this are quarantined unread."
    )
    max_uncompressed_bytes: int = Field(
        512 * 1024**2,
        gt=0,
        description="A workbook whose zip would expand beyond this is quarantined (zip bombs).",
    )
    ledger_bucket: str = Field(
        "nova_ingest_ledger", description="JetStream key-value bucket of the ingest ledger."
    )
    metrics_port: int = Field(
        9101, ge=0, le=65535, description="Prometheus metrics port of the ingestor (0: off)."
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address the ingestor's metrics listen on (0.0.0.0: every interface).",
    )
    bronze_retention_days: float = Field(
        90.0,
        gt=0,
        description="Bronze partitions older than this are pruned once their data is in silver.",
    )


class TransformerSettings(BaseModel):
    durable_name: str = Field("transformer", description="Durable JetStream consumer name.")
    max_deliver: int = Field(
        10, ge=1, description="Deliveries of one event (retried with backoff) before giving up."
    )
    ack_wait_seconds: float = Field(
        20.0,
        gt=0,
        description="Redeliver when not acked this long: the event of a crashed transformer "
        "is built again this soon (a long build reports progress, so it is not).",
    )


class ForecasterSettings(BaseModel):
    bucket: Literal["week", "month"] = Field("week", description="Forecast bucket.")
    horizon: int = Field(12, ge=1, le=104, description="Buckets ahead to forecast.")
    service_level: float = Field(
        0.95, gt=0.5, lt=1, description="Target cycle service level of the reorder points."
    )
    jobs: int = Field(0, ge=0, description="Worker processes for fitting (0: every core).")
    backtest_origins: int = Field(
        3, ge=1, le=12, description="Rolling-origin backtest windows used to select models."
    )
    interval_hours: float = Field(
        0.0, ge=0, description="Run again every this many hours (0: run once and exit)."
    )
    site_min_nonzero_periods: int = Field(
        12,
        ge=0,
        description="Also forecast item x site where it had demand in this many buckets (0: off).",
    )
    candidates: str = Field(
        "",
        description="Comma-separated candidate models, e.g. adding AutoARIMA,Prophet "
        "(empty: the default set; see the README).",
    )
    metrics_port: int = Field(
        9102, ge=0, le=65535, description="Prometheus metrics port of a forecast run (0: off)."
    )
    metrics_host: str = Field(
        "127.0.0.1", description="Address the forecaster's metrics listen on."
    )

    @property
    def candidate_models(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.candidates.split(",") if name.strip())


class ApiSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Address the API binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port the API listens on.")
    max_page_size: int = Field(500, ge=1, description="Largest page a list endpoint returns.")
    version_check_seconds: float = Field(
        5.0,
        gt=0,
        description="How often the API looks for a newer gold version when no event arrives.",
    )
    keys: SecretStr = Field(
        SecretStr(""),
        description="Comma-separated API keys; when set, every /api route needs one "
        "(Authorization: Bearer or X-API-Key). Empty: open.",
    )
    cors_origins: str = Field(
        "", description="Comma-separated origins allowed to call the API from a browser."
    )
    max_date_range_days: int = Field(
        3700, ge=1, description="Widest from..to range a history query may ask for."
    )
    max_query_bytes: int = Field(
        2048, ge=64, description="Longest query string accepted (longer: 414)."
    )
    cache_entries: int = Field(
        4096, ge=0, description="Responses kept in the in-process cache (keyed by gold version)."
    )
    cache_max_age_seconds: int = Field(
        5, ge=0, description="max-age of the Cache-Control header on gold responses."
    )
    recent_ingestions: int = Field(
        500, ge=1, description="Ingestion events the API keeps for /api/v1/ingestions."
    )
    follow_events: bool = Field(
        True, description="Listen to NATS for new gold versions and ingestions."
    )

    @property
    def key_list(self) -> list[str]:
        return [k.strip() for k in self.keys.get_secret_value().split(",") if k.strip()]

    @property
    def open_to_the_network(self) -> bool:
        """Bound beyond this machine with no key required: anyone who can reach it reads gold."""
        if self.key_list or self.host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name: it may well resolve beyond loopback
            return True

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


class LogSettings(BaseModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: console on a terminal, JSON lines otherwise."
    )


class NovaSettings(BaseSettings):
    """All settings; each section is read from `NOVA_<SECTION>__<NAME>`."""

    model_config = SettingsConfigDict(
        env_prefix="NOVA_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    var_dir: Path = Field(
        Path("var"), description="Root of local state: inbox, lake, NATS store, logs."
    )
    nats: NatsSettings = NatsSettings()
    storage: StorageSettings = StorageSettings()
    ingestor: IngestorSettings = IngestorSettings()
    transformer: TransformerSettings = TransformerSettings()
    forecaster: ForecasterSettings = ForecasterSettings()
    api: ApiSettings = ApiSettings()
    log: LogSettings = LogSettings()

    @model_validator(mode="after")
    def _derive_paths_from_var_dir(self) -> NovaSettings:
        # One variable (NOVA_VAR_DIR) relocates all local state; each path can still be overridden.
        if self.storage.local_root is None:
            self.storage.local_root = self.var_dir / "lake"
        if self.ingestor.inbox_dir is None:
            self.ingestor.inbox_dir = self.var_dir / "inbox"
        if self.ingestor.archive_dir is None:
            self.ingestor.archive_dir = self.var_dir / "archive"
        if self.ingestor.quarantine_dir is None:
            self.ingestor.quarantine_dir = self.var_dir / "quarantine"
        inbox = self.ingestor.inbox_dir.resolve()
        for name in ("archive_dir", "quarantine_dir"):
            folder = getattr(self.ingestor, name).resolve()
            if folder.is_relative_to(inbox):
                # The watcher would pick archived or quarantined files up again, forever.
                raise ValueError(f"ingestor.{name} ({folder}) must not be inside the inbox")
        return self

    @property
    def nats_store_dir(self) -> Path:
        return self.var_dir / "nats"

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"


def environment_variable_names() -> list[str]:
    """Every variable NovaSettings reads, in declaration order (used to check `.env.example`)."""
    names: list[str] = []
    for field_name, field in NovaSettings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.extend(
                f"NOVA_{field_name.upper()}__{sub.upper()}" for sub in annotation.model_fields
            )
        else:
            names.append(f"NOVA_{field_name.upper()}")
    return names
