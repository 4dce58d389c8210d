"""A forecast run whose announcement cannot reach NATS ends, with a warning, instead of
waiting for the broker forever."""

from __future__ import annotations

import time

from services.forecaster.main import publish_or_warn
from shared.events import ForecastPublished
from shared.settings import NovaSettings
from tests.conftest import free_port


def test_publishing_to_an_absent_broker_gives_up(tmp_path):
    settings = NovaSettings(var_dir=tmp_path, nats={"url": f"nats://127.0.0.1:{free_port()}"})
    event = ForecastPublished(
        producer="test", correlation_id="c", run_id="r", tables=[], series=0,
        items_with_policy=0, duration_seconds=0.0,
    )  # fmt: skip
    started = time.monotonic()
    assert publish_or_warn(settings, event, timeout=2.0) is False
    assert time.monotonic() - started < 10


def test_publishing_to_a_live_broker_succeeds(nats_url, tmp_path):
    settings = NovaSettings(var_dir=tmp_path, nats={"url": nats_url})
    event = ForecastPublished(
        producer="test", correlation_id="c", run_id="r", tables=[], series=0,
        items_with_policy=0, duration_seconds=0.0,
    )  # fmt: skip
    assert publish_or_warn(settings, event) is True
