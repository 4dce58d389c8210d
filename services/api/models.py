"""Response schemas of the API (the OpenAPI document is generated from these)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Grain = Literal["day", "week", "month"]
AlertLevel = Literal["critical", "attention", "monitor", "ok"]
ExportFormat = Literal["json", "csv", "parquet"]


class Page(BaseModel):
    total: int = Field(description="Rows matching the filters, over all pages.")
    limit: int
    offset: int
    version: int | None = Field(
        description="Version of the gold table served; None before it exists."
    )


class Item(BaseModel):
    item_code: str = Field(description="Material code as the ERP writes it, leading zeros kept.")
    item_description: str | None
    item_family: str | None
    unit: str | None
    first_seen: date | None = Field(description="Earliest request date.")
    last_seen: date | None = Field(description="Latest request date.")
    request_lines: int | None
    total_quantity: float | None
    adi: float | None = Field(description="Average demand interval, in weekly buckets.")
    cv2: float | None = Field(description="Squared coefficient of variation of non-zero demand.")
    demand_class: str | None = Field(description="smooth, erratic, intermittent or lumpy.")


class ItemPage(Page):
    items: list[Item]


class InventoryPolicy(BaseModel):
    item_code: str
    run_id: str
    service_level: float = Field(description="Target probability of no stock-out per cycle.")
    reorder_point: float | None
    safety_stock: float | None
    classic_reorder_point: float | None = Field(description="Normal-approximation reorder point.")
    classic_safety_stock: float | None
    mean_daily_demand: float | None
    mean_lead_time_demand: float | None
    lead_time_mean_days: float | None
    lead_time_std_days: float | None
    lead_time_source: str | None = Field(description="Where the lead time came from.")
    lead_time_samples: int | None
    snapshot_date: date | None = Field(description="Date of the stock snapshot used, if any.")
    on_hand: float | None
    days_of_cover: float | None
    alert_level: AlertLevel | None
    # Written by runs since issue 12; None for older runs.
    expected_service_level: float | None = Field(
        None,
        description="The cycle service level the printed reorder point promises by the model "
        "(whole units: nearest to the target, or above it where even the smallest allowed "
        "reorder point gives more).",
    )
    method: str | None = Field(
        None,
        description="How the reorder point was derived: demand_history, thin_history (under 12 "
        "periods or 3 periods with demand), forecast_only or no_demand.",
    )
    evidence_periods: int | None = Field(None, description="Periods of history used.")
    evidence_demand_periods: int | None = Field(None, description="Periods with demand among them.")
    order_quantity: float | None = Field(None, description="Q of the (s, S) policy.")
    order_up_to: float | None = Field(None, description="S = reorder point + Q.")
    undershoot_mean: float | None = Field(
        None, description="Mean shortfall below the reorder point when an order is triggered."
    )
    empirical_window_reorder_point: float | None = Field(
        None,
        description="For comparison: the service-level quantile of demand over every "
        "overlapping lead-time window of the history.",
    )


class PolicyPage(Page):
    policies: list[InventoryPolicy]


class ItemDetail(Item):
    sites: list[str] = Field(description="Sites (depots) that requested the item.")
    forecast_series: list[str] = Field(description="Series ids the latest forecast run covers.")
    policy: InventoryPolicy | None


class Site(BaseModel):
    site_code: str
    site_id: str | None
    client_name: str | None
    client_id: str | None
    state: str | None
    state_name: str | None
    first_seen: date | None
    last_seen: date | None
    request_lines: int | None
    in_sites_sheet: bool | None


class SitePage(Page):
    sites: list[Site]


class Supplier(BaseModel):
    supplier_name: str
    order_count: int | None
    line_count: int | None
    lead_time_mean_days: float | None
    lead_time_std_days: float | None
    lead_time_p50_days: float | None
    lead_time_p90_days: float | None
    lead_time_min_days: int | None
    lead_time_max_days: int | None
    last_order_date: date | None


class SupplierPage(Page):
    suppliers: list[Supplier]


class DemandPoint(BaseModel):
    period: date = Field(description="First day of the day, ISO week (Monday) or month.")
    quantity: float
    request_lines: int
    requests: int


class DemandHistory(BaseModel):
    item_code: str | None = Field(description="None: all items together.")
    site_code: str | None = Field(description="None: all sites together.")
    grain: Grain
    date_from: date | None
    date_to: date | None
    points: list[DemandPoint] = Field(description="Every period in range; no demand is 0.")
    version: int | None


class ForecastPoint(BaseModel):
    period: date
    step: int = Field(description="Periods ahead of the last observed one (1 = next).")
    p10: float | None
    p20: float | None
    p30: float | None
    p40: float | None
    p50: float | None
    p60: float | None
    p70: float | None
    p80: float | None
    p90: float | None
    p_service: float | None = Field(description="Quantile at the run's service level.")
    mean: float | None
    actual: float | None = Field(description="Observed demand of the period, once known.")


class ForecastSeries(BaseModel):
    series_id: str = Field(description="item_code, or item_code|site_code.")
    site_code: str | None
    model: str = Field(description="Model the backtest selected for this series.")
    points: list[ForecastPoint]
    history: list[DemandPoint] = Field(description="Recent actuals at the forecast's grain.")


class ItemForecast(BaseModel):
    item_code: str
    run_id: str | None
    bucket: str | None = Field(description="week or month.")
    service_level: float | None
    series: list[ForecastSeries]
    version: int | None


class ForecastSummaryPeriod(BaseModel):
    period: date
    series: int = Field(description="Item-level series forecast for the period.")
    items: int
    mean: float = Field(description="Mean of the total: the sum of the series' means.")
    p10: float = Field(description="10 % quantile of the total (Monte-Carlo, see `method`).")
    p50: float = Field(description="Median of the total (Monte-Carlo, see `method`).")
    p90: float = Field(description="90 % quantile of the total (Monte-Carlo, see `method`).")


class ForecastSummary(BaseModel):
    run_id: str | None
    method: str = Field(description="How the quantiles of the total are computed.")
    samples: int = Field(description="Monte-Carlo draws of the total per period.")
    periods: list[ForecastSummaryPeriod]
    version: int | None


class Alert(BaseModel):
    item_code: str
    item_description: str | None
    alert_level: AlertLevel
    on_hand: float | None
    reorder_point: float | None
    safety_stock: float | None
    days_of_cover: float | None
    lead_time_mean_days: float | None
    snapshot_date: date | None


class AlertPage(Page):
    alerts: list[Alert]


class Calibration(BaseModel):
    level: str = Field(description="The served quantile: p10..p90, or p_service.")
    tau: float = Field(description="Its probability level τ.")
    share_below: float | None = Field(description="Share of backtest cells with actual < q.")
    share_at_or_below: float | None = Field(description="Share of backtest cells with actual <= q.")
    calibrated: bool | None = Field(
        description="share_below − 0.03 <= τ <= share_at_or_below + 0.03 (demand is "
        "discrete with mass at 0, so a calibrated q has share(y < q) <= τ <= share(y <= q))."
    )


class AccuracyGroup(BaseModel):
    group: str | None
    series: int
    cells: int | None = Field(description="Backtest cells scored (series x origins x steps).")
    mase: float | None = Field(description="Mean absolute scaled error (mean over series).")
    wql: float | None = Field(
        description="Weighted quantile loss pooled over the group: Σ quantile loss / Σ|actual| "
        "over its backtest cells, quantiles 0.1..0.9; null for runs that did not record "
        "the sums."
    )
    wape: float | None = Field(description="Weighted absolute percentage error (mean over series).")
    bias: float | None = Field(description="Mean over series.")
    calibration: list[Calibration] = Field(
        description="Per served level; empty for runs that did not record the counts."
    )


class ForecastAccuracy(BaseModel):
    by: Literal["demand_class", "model", "family"]
    run_id: str | None
    service_level: float | None = Field(description="τ of the p_service level.")
    tolerance: float = Field(description="Points a calibrated level may be off by.")
    note: str | None = Field(description="What this run's accuracy rows cannot show, if any.")
    overall: AccuracyGroup | None = Field(description="Every selected series together.")
    groups: list[AccuracyGroup]
    version: int | None


class QualityCheck(BaseModel):
    check: str
    table: str
    kind: str
    severity: str
    passed: bool
    failing_rows: int
    message: str
    sample: list[dict[str, Any]]
    evaluated_at: datetime


class QualityReport(BaseModel):
    build_id: str | None
    evaluated_at: datetime | None
    passed: int
    failed_errors: int
    failed_warnings: int
    checks: list[QualityCheck]
    report_url: str | None = Field(description="The build's HTML report.")
    version: int | None


class Column(BaseModel):
    name: str
    type: str


class Dataset(BaseModel):
    table: str = Field(description="Layer-qualified name, e.g. gold.dim_item.")
    version: int
    row_count: int | None
    columns: list[Column]
    committed_at: datetime | None = Field(description="When this version was committed.")
    age_seconds: float | None
    lineage: dict[str, str] = Field(description="The commit's build id, sources and counts.")


class Catalog(BaseModel):
    build_id: str | None = Field(description="The gold build the versions come from.")
    run_id: str | None = Field(description="The forecast run the forecast tables come from.")
    datasets: list[Dataset]


class Ingestion(BaseModel):
    occurred_at: datetime
    outcome: Literal["ingested", "rejected"]
    dataset: str
    source_name: str
    row_count: int | None = None
    bronze_path: str | None = None
    reason: str | None = None
    column: str | None = None
    row: int | None = None


class QuarantinedFile(BaseModel):
    name: str
    dataset: str | None
    reason: str | None
    quarantined_at: str | None


class Ingestions(BaseModel):
    events_connected: bool = Field(description="Whether the API follows the event stream now.")
    events_error: str | None = Field(
        None, description="Why the API stopped following events (e.g. NATS refused its login)."
    )
    recent: list[Ingestion] = Field(description="Newest first.")
    quarantine_count: int | None = Field(description="None when the folder is not reachable.")
    quarantine: list[QuarantinedFile]


class ForecastRun(BaseModel):
    run_id: str
    finished_at: datetime
    duration_seconds: float | None
    series: int | None
    items_with_policy: int | None
    selected_models: dict[str, int] = Field(description="Series per chosen model.")
    gold_build_id: str | None = Field(
        None, description="The gold build the run read; null for runs that did not record it."
    )
    stage_seconds: dict[str, float] | None = Field(
        None, description="Wall time per stage (read, backtest, select, final_fit, policy, ...)."
    )
    series_by_class: dict[str, int] | None = Field(None, description="Series per demand class.")
    failures_by_model: dict[str, int] | None = Field(
        None, description="Series with a failed fit, per model."
    )


class Status(BaseModel):
    build_id: str | None
    last_build_at: datetime | None
    last_forecast_run: ForecastRun | None
    versions: dict[str, int]
    checked_at: datetime | None = Field(description="Last time the API looked for new versions.")
    storage_error: str | None = Field(description="Why the last look failed, if it did.")
    events_error: str | None = Field(
        None, description="Why the API stopped following events (e.g. NATS refused its login)."
    )


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    ready: bool
    versions: dict[str, int]
    build_id: str | None
    run_id: str | None
    storage_error: str | None
    loading: bool = Field(description="Gold tables are still being loaded into memory.")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = Field(None, description="Each invalid parameter.")
