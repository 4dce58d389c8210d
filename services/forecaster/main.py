"""Composition root of the forecaster: `python -m services.forecaster`.

Offline by design: it reads gold, writes forecast tables and publishes
`nova.v1.forecast.published`; nothing of it runs inside the API. It runs once and exits, or
every `NOVA_FORECASTER__INTERVAL_HOURS`. With `--worker` it instead forecasts chunks of
distributed runs (`services.forecaster.distributed`) until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from services.forecaster.progress import progress_reporter
from services.forecaster.runner import (
    OUTPUT_TABLES,
    ForecastOptions,
    NoHistoryError,
    RunManifest,
    run_forecast,
)
from services.forecaster.telemetry import RunTelemetry
from shared.broker import connect, ensure_stream
from shared.events import ForecastPublished, TableVersion
from shared.logging import configure_logging, get_logger
from shared.settings import NovaSettings
from shared.storage import Lake

PRODUCER = "forecaster"
log = get_logger(__name__)


def options_from(settings: NovaSettings, **overrides: object) -> ForecastOptions:
    forecaster = settings.forecaster
    values: dict[str, object] = {
        "bucket": forecaster.bucket,
        "horizon": forecaster.horizon,
        "service_level": forecaster.service_level,
        "jobs": forecaster.jobs,
        "backtest_origins": forecaster.backtest_origins,
        "site_min_nonzero_periods": forecaster.site_min_nonzero_periods,
        "candidates": forecaster.candidate_models or None,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return ForecastOptions(**values)  # type: ignore[arg-type]


def published_event(manifest: RunManifest, lake: Lake) -> ForecastPublished:
    tables = []
    for name in OUTPUT_TABLES:
        version = manifest.table_versions[name]
        table = lake.delta_table("gold", name, version=version)
        tables.append(
            TableVersion(
                table=f"gold.{name}", version=version, row_count=table.count() if table else 0
            )
        )
    return ForecastPublished(
        producer=PRODUCER,
        correlation_id=manifest.run_id,
        run_id=manifest.run_id,
        tables=tables,
        series=manifest.series,
        items_with_policy=manifest.items_with_policy,
        duration_seconds=manifest.duration_seconds,
        selected_models=manifest.selected_models,
    )


async def publish(settings: NovaSettings, event: ForecastPublished) -> None:
    nc = await connect(settings.nats, name=PRODUCER)
    try:
        js = nc.jetstream()
        await ensure_stream(js, settings.nats)
        await js.publish(event.subject, event.to_bytes(), headers={"Nats-Msg-Id": event.run_id})
    finally:
        await nc.close()
    log.info("forecast_published", run_id=event.run_id, subject=event.subject)


PUBLISH_TIMEOUT_SECONDS = 30.0


def publish_or_warn(
    settings: NovaSettings, event: ForecastPublished, timeout: float = PUBLISH_TIMEOUT_SECONDS
) -> bool:
    """Announce a committed run; give up after `timeout` with a warning, since the run is
    already live (readers find it by their periodic check) and a one-shot must not hang."""
    try:
        asyncio.run(asyncio.wait_for(publish(settings, event), timeout))
        return True
    except Exception as error:
        log.warning(
            "forecast_publish_failed",
            run_id=event.run_id,
            error=f"{type(error).__name__}: {error}",
            note="the run is committed; readers find it by their periodic version check",
        )
        return False


def serve_metrics(settings: NovaSettings) -> RunTelemetry:
    """The run's Prometheus metrics on the configured port; a busy port (another run serving
    them) costs the metrics, not the run."""
    telemetry = RunTelemetry()
    forecaster = settings.forecaster
    try:
        telemetry.serve(forecaster.metrics_port, forecaster.metrics_host)
    except OSError as error:
        log.warning("forecast_metrics_unavailable", port=forecaster.metrics_port, error=str(error))
    else:
        if forecaster.metrics_port:
            log.info("forecast_metrics_listening", host=forecaster.metrics_host,
                     port=forecaster.metrics_port)  # fmt: skip
    return telemetry


def run_once(
    settings: NovaSettings,
    options: ForecastOptions,
    progress: Callable[[int, int], None] | None = None,
    telemetry: RunTelemetry | None = None,
) -> RunManifest | None:
    """Forecast, commit, publish. None when gold has no demand yet (nothing to do)."""
    lake = Lake.from_settings(settings.storage)
    try:
        manifest = run_forecast(lake, options, progress=progress, telemetry=telemetry)
    except NoHistoryError as reason:
        log.warning("forecast_skipped", reason=str(reason))
        return None
    publish_or_warn(settings, published_event(manifest, lake))
    return manifest


def quiet_model_libraries() -> None:
    """Prophet and cmdstanpy print INFO lines of their own per fit; operators tail JSON logs,
    so only their warnings get through, rendered like every other line."""
    with contextlib.suppress(ImportError):
        import cmdstanpy  # noqa: F401 - importing installs its handler, removed below
    for name in ("cmdstanpy", "prophet", "prophet.plot"):
        library = logging.getLogger(name)
        library.handlers.clear()
        library.setLevel(logging.WARNING)
        library.propagate = True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.forecaster")
    parser.add_argument(
        "--worker",
        action="store_true",
        help="forecast chunks of distributed runs from the work stream until SIGTERM",
    )
    args = parser.parse_args(argv)
    settings = NovaSettings()
    configure_logging(PRODUCER, settings.log)
    quiet_model_libraries()
    if args.worker:
        from services.forecaster.distributed import run_worker

        asyncio.run(run_worker(settings))
        return
    options = options_from(settings)
    interval = settings.forecaster.interval_hours * 3600
    telemetry = serve_metrics(settings)
    # No SIGTERM handler on purpose: stopping mid-run is safe (the manifest is written last,
    # so an interrupted run leaves the previous forecasts live) and should be immediate.
    while True:
        with progress_reporter(interactive=False) as progress:
            run_once(settings, options, progress, telemetry)
        if not interval:
            return
        time.sleep(interval)


if __name__ == "__main__":
    main()
