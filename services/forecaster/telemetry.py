"""Prometheus metrics of a forecast run, on a registry of their own (one per run or process).

A run is long (minutes) and offline, so operators watch it live: which stage it is in, how many
series are done out of how many, and which models failed. `serve` exposes the registry on the
configured port (`NOVA_FORECASTER__METRICS_PORT`, 0: off) for the run's lifetime.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

STAGES = ("idle", "read", "backtest", "policy", "commit", "done")


class RunTelemetry:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.series_total = Gauge(
            "nova_forecast_series_total", "Series in the current run.", registry=self.registry
        )
        self.series_done = Gauge(
            "nova_forecast_series_done",
            "Series of the current run whose backtest is complete.",
            registry=self.registry,
        )
        self.stage_gauge = Gauge(
            "nova_forecast_stage",
            "1 for the stage the run is in (read, backtest, policy, commit, done), else 0.",
            ["stage"],
            registry=self.registry,
        )
        self.failures_counter = Counter(
            "nova_forecast_model_failures",
            "Series whose fit of a model failed (the model is then not used for that series).",
            ["model"],
            registry=self.registry,
        )
        self.runs = Counter(
            "nova_forecast_runs", "Forecast runs committed.", registry=self.registry
        )
        self.last_duration = Gauge(
            "nova_forecast_last_run_seconds",
            "Wall seconds of the last committed run.",
            registry=self.registry,
        )
        self.last_success = Gauge(
            "nova_forecast_last_success_timestamp_seconds",
            "Unix time the last run was committed.",
            registry=self.registry,
        )
        self.stage("idle")

    def serve(self, port: int, host: str) -> None:
        """Expose the registry over HTTP (a daemon thread); port 0 keeps it off."""
        if port:
            start_http_server(port, addr=host, registry=self.registry)

    def stage(self, name: str) -> None:
        for stage in STAGES:
            self.stage_gauge.labels(stage).set(1.0 if stage == name else 0.0)

    def started(self, series: int) -> None:
        self.series_total.set(series)
        self.series_done.set(0)

    def progress(self, done: int, total: int) -> None:
        self.series_done.set(done)
        self.series_total.set(total)

    def failures(self, by_model: Mapping[str, int]) -> None:
        for model, count in by_model.items():
            self.failures_counter.labels(model).inc(count)

    def finished(self, seconds: float) -> None:
        self.stage("done")
        self.runs.inc()
        self.last_duration.set(seconds)
        self.last_success.set(time.time())
