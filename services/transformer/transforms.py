"""Named SQL transforms and the schema each one promises.

Each transform is a `.sql` file under `sql/<layer>/<table>.sql` that reads named input
relations and returns one table; the schema beside it is checked on every run so that a change
to the SQL cannot silently change what downstream readers get.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import duckdb
import pyarrow as pa

from shared import demand_classes


@dataclass(frozen=True)
class Transform:
    layer: str
    table: str
    inputs: tuple[str, ...]
    schema: pa.Schema
    # Columns the SQL reads from an input, when far fewer than the input has: whole-history
    # inputs are read from disk on every build, and the unused columns were most of the cost.
    input_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def sql(self) -> str:
        resource = files("services.transformer") / "sql" / self.layer / f"{self.table}.sql"
        return resource.read_text(encoding="utf-8")

    def run(self, **inputs: Any) -> pa.Table:
        """Run the SQL over Arrow tables/datasets given by input name; check the schema."""
        missing = set(self.inputs) - set(inputs)
        if missing:
            raise ValueError(f"{self.layer}.{self.table} needs inputs {sorted(missing)}")
        with duckdb.connect(":memory:") as con:
            con.execute(demand_classes.SQL_MACRO)
            for name in self.inputs:
                con.register(name, inputs[name])
            result = con.sql(self.sql).to_arrow_table()
        if not _same_shape(result.schema, self.schema):
            raise TypeError(
                f"{self.layer}.{self.table} produced\n{result.schema}\nbut promises\n{self.schema}"
            )
        return result.cast(self.schema)


def _same_type(produced: pa.DataType, promised: pa.DataType) -> bool:
    if pa.types.is_timestamp(produced) and pa.types.is_timestamp(promised):
        # DuckDB names UTC "Etc/UTC"; the instant is the same.
        utc = {"UTC", "Etc/UTC", "+00:00"}
        return produced.unit == promised.unit and (
            produced.tz == promised.tz or {produced.tz, promised.tz} <= utc
        )
    return produced.equals(promised)


def _same_shape(produced: pa.Schema, promised: pa.Schema) -> bool:
    return produced.names == promised.names and all(
        _same_type(a.type, b.type) for a, b in zip(produced, promised, strict=True)
    )


_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "double": pa.float64(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamp_utc": pa.timestamp("us", tz="UTC"),
}


def columns(spec: str) -> pa.Schema:
    """`"item_code string, quantity double"` as an Arrow schema: compact enough to sit beside
    the SQL it describes."""
    fields = []
    for part in spec.split(","):
        name, type_name = part.split()
        fields.append(pa.field(name, _TYPES[type_name]))
    return pa.schema(fields)


LINEAGE = (
    "_source_file string, _source_sheet string, _source_row int32, _content_sha256 string, "
    "_ingested_at timestamp_utc"
)
SILVER_KEY = "business_month date, _business_key string"


def _silver(table: str, spec: str, inputs: tuple[str, ...] = ("bronze",)) -> Transform:
    return Transform("silver", table, inputs, columns(f"{spec}, {SILVER_KEY}, {LINEAGE}"))


SILVER: dict[str, Transform] = {
    t.table: t
    for t in (
        _silver(
            "erp_requisitions",
            "depot_code string, item_code string, item_description string, item_family string, "
            "supplier_name string, quantity double, unit string, required_date date, "
            "request_number string, requested_date date, purchased_date date, line_number int32",
        ),
        _silver("erp_cost_summary", "account string, net_value_brl double"),
        _silver(
            "erp_sites",
            "site_code string, site_id string, client_name string, client_id string, "
            "change_status string",
        ),
        _silver(
            "stock_movements",
            "movement_date date, depot_code string, item_code string, item_description string, "
            "movement_type string, quantity double, unit string, document_number string, "
            "unit_cost_brl double",
        ),
        _silver(
            "stock_on_hand",
            "snapshot_date date, depot_code string, item_code string, item_description string, "
            "quantity_on_hand double, unit string, average_cost_brl double",
        ),
        _silver(
            "weather_hourly",
            "observed_at timestamp, city string, state string, latitude double, longitude double, "
            "temperature_c double, relative_humidity_pct double, precipitation_mm double, "
            "wind_speed_kmh double",
            inputs=("bronze", "cities"),
        ),
        _silver("selic", "rate_date date, rate_pct double"),
        _silver(
            "ptax_usd",
            "quoted_at timestamp, quote_date date, buy_rate double, sell_rate double, "
            "bulletin_type string",
        ),
        _silver(
            "ipca",
            "month date, value_pct double, variable_code string, variable string",
        ),
    )
}

# Silver tables computed from another silver table, month by month.
SILVER_DERIVED: dict[str, Transform] = {
    "weather_hourly": Transform(
        "silver",
        "weather_daily",
        ("silver_weather_hourly",),
        columns(
            "weather_date date, city string, state string, temperature_mean_c double, "
            "temperature_min_c double, temperature_max_c double, precipitation_mm double, "
            "humidity_mean_pct double, wind_max_kmh double, hours int32, business_month date"
        ),
    ),
    "ptax_usd": Transform(
        "silver",
        "ptax_usd_daily",
        ("silver_ptax_usd",),
        columns(
            "quote_date date, buy_rate double, sell_rate double, is_closing_rate bool, "
            "bulletins int32, business_month date"
        ),
    ),
}

GOLD: dict[str, Transform] = {
    t.table: t
    for t in (
        Transform(
            "gold",
            "fact_demand",
            ("silver_erp_requisitions",),
            columns(
                "demand_date date, item_code string, site_code string, quantity double, "
                "request_lines int32, requests int32, business_month date"
            ),
        ),
        Transform(
            "gold",
            "fact_lead_time",
            ("silver_erp_requisitions",),
            columns(
                "item_code string, site_code string, supplier_name string, request_number string, "
                "line_number int32, requested_date date, purchased_date date, "
                "lead_time_days int32, quantity double, business_month date, "
                "_source_file string, _source_row int32, _content_sha256 string"
            ),
        ),
        Transform(
            "gold",
            "dim_item",
            ("silver_erp_requisitions", "gold_fact_demand"),
            columns(
                "item_code string, item_description string, item_family string, unit string, "
                "first_seen date, last_seen date, request_lines int64, total_quantity double, "
                "adi double, cv2 double, demand_class string"
            ),
            input_columns={
                "silver_erp_requisitions": (
                    "item_code",
                    "item_description",
                    "item_family",
                    "unit",
                    "requested_date",
                    "quantity",
                    "_ingested_at",
                    "_content_sha256",
                    "_source_row",
                ),
            },
        ),
        Transform(
            "gold",
            "dim_site",
            ("silver_erp_requisitions", "silver_erp_sites", "silver_stock_on_hand", "states"),
            columns(
                "site_code string, site_id string, client_name string, client_id string, "
                "state string, state_name string, first_seen date, last_seen date, "
                "request_lines int64, in_sites_sheet bool"
            ),
            input_columns={
                "silver_erp_requisitions": ("depot_code", "requested_date"),
                "silver_stock_on_hand": ("depot_code",),
            },
        ),
        Transform(
            "gold",
            "dim_supplier",
            ("gold_fact_lead_time",),
            columns(
                "supplier_name string, order_count int64, line_count int64, "
                "lead_time_mean_days double, lead_time_std_days double, "
                "lead_time_p50_days double, lead_time_p90_days double, lead_time_min_days int32, "
                "lead_time_max_days int32, last_order_date date"
            ),
        ),
        Transform(
            "gold",
            "dim_date",
            ("bounds", "holidays"),
            columns(
                "calendar_date date, year int32, quarter int32, month int32, iso_week int32, "
                "iso_weekday int32, week_start date, month_start date, is_weekend bool, "
                "is_national_holiday bool, is_bahia_holiday bool, holiday_name string, "
                "is_business_day bool"
            ),
        ),
        Transform(
            "gold",
            "fact_external_daily",
            (
                "gold_dim_date",
                "silver_weather_daily",
                "silver_selic",
                "silver_ptax_usd_daily",
                "silver_ipca",
            ),
            columns(
                "calendar_date date, temperature_mean_c double, temperature_min_c double, "
                "temperature_max_c double, precipitation_mm double, humidity_mean_pct double, "
                "selic_rate_pct double, selic_is_carried bool, ptax_usd_sell double, "
                "ptax_is_carried bool, ipca_month_pct double"
            ),
        ),
        Transform(
            "gold",
            "fact_stock",
            ("silver_stock_on_hand",),
            columns(
                "snapshot_date date, site_code string, item_code string, "
                "quantity_on_hand double, average_cost_brl double, stock_value_brl double, "
                "unit string"
            ),
        ),
        Transform(
            "gold",
            "mart_features",
            (
                "gold_fact_demand",
                "gold_dim_item",
                "gold_dim_date",
                "gold_fact_external_daily",
                "gold_fact_lead_time",
            ),
            columns(
                "item_code string, week_start date, item_family string, demand_class string, "
                "quantity double, request_lines int32, sites int32, year int32, iso_week int32, "
                "month int32, quarter int32, holidays int32, business_days int32, "
                "temperature_mean_c double, precipitation_mm double, humidity_mean_pct double, "
                "selic_rate_pct double, ptax_usd_sell double, ipca_month_pct double, "
                "lead_time_mean_days double, lead_time_p90_days double, quantity_mean_4w double, "
                "quantity_mean_13w double, quantity_std_13w double, demand_weeks_13w int32, "
                "family_quantity double, family_quantity_mean_13w double"
            ),
        ),
    )
}

# Gold tables rebuilt month by month (partitioned by business_month); the others are small
# enough to recompute whole on every build.
GOLD_BY_MONTH = ("fact_demand", "fact_lead_time")
