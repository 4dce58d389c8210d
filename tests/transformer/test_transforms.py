"""Each SQL transform on the smallest hand-made input that exercises what it promises.

Expected rows are worked out by hand in the comments, never copied from the output.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from services.transformer.builds import CITIES, STATES, holidays_table
from services.transformer.transforms import GOLD, SILVER, SILVER_DERIVED
from tests.transformer.conftest import (
    SHA_A,
    T0,
    bronze_table,
    gold_schema,
    month_start,
    silver_schema,
    table_of,
)

SHA_B = "b" * 64
T1 = T0 + timedelta(days=1)


def assert_rows(table: pa.Table, expected: list[dict[str, Any]], *, sort_by=None) -> None:
    """Exact rows (floats to 1e-6 relative), in the table's order unless `sort_by` is given."""
    rows = table.to_pylist()
    if sort_by is not None:
        rows = sorted(rows, key=sort_by)
    assert len(rows) == len(expected), rows
    for row, want in zip(rows, expected, strict=True):
        assert row == {k: pytest.approx(v) if isinstance(v, float) else v for k, v in want.items()}


def lineage(source_row: int, *, file="export.xlsx", sheet="", sha=SHA_A, at=T0) -> dict:
    return {
        "_source_file": file,
        "_source_sheet": sheet,
        "_source_row": source_row,
        "_content_sha256": sha,
        "_ingested_at": at,
    }


def by_source(row: dict) -> tuple:
    return (row["_content_sha256"], row["_source_row"])


# --- silver ----------------------------------------------------------------------------------


def test_silver_erp_requisitions_cleans_keeps_zeros_and_numbers_twin_lines():
    sheet = "CUSTO DE MATERIAL E SERVIÇOS"
    plain = {
        "item_description": "CABO",
        "item_family": "MATERIAL ELETRICO",
        "quantity": 1.0,
        "unit": "MT",
        "request_number": "000123",
        "requested_date": date(2025, 1, 6),
    }
    file_a = bronze_table(
        "erp_requisitions",
        [  # deliberately not in source-row order: the ordinal follows _source_row
            {**plain, "depot_code": " bajss002-3", "item_code": "010825 ", "quantity": 2.0,
             "_source_row": 7},
            {
                "depot_code": " bajss002-3 ",
                "item_code": " 010825 ",
                "item_description": " CABO   FLEXIVEL  2,5MM ",
                "item_family": " material eletrico ",
                "supplier_name": " Eletro   Nordeste  ltda ",  # named alike: upper, one space
                "quantity": 10.0,
                "unit": " mt ",
                "required_date": date(2025, 1, 31),
                "request_number": " 000123 ",
                "requested_date": date(2025, 1, 6),
                "purchased_date": date(2025, 1, 10),
                "_source_row": 2,
            },
            {"depot_code": None, "item_code": "0134", "item_description": "FRETE",
             "item_family": "SERVIÇOS TOMADOS", "quantity": 1.0, "_source_row": 6},
            {**plain, "depot_code": "BAJSS002-3", "item_code": "010825", "quantity": 5.0,
             "_source_row": 4},
            {**plain, "depot_code": "GERBA", "item_code": "010825", "_source_row": 3},
        ],
        file="a.xlsx",
        sheet=sheet,
    )  # fmt: skip
    # The same first line exported again in a later file: ordinals restart per file, so it gets
    # the same business key as file a's line and will replace it in silver.
    file_b = bronze_table(
        "erp_requisitions",
        [{**plain, "depot_code": "BAJSS002-3", "item_code": "010825", "quantity": 11.0}],
        file="b.xlsx",
        sheet=sheet,
        sha=SHA_B,
        ingested_at=T1,
    )

    result = SILVER["erp_requisitions"].run(bronze=pa.concat_tables([file_a, file_b]))

    common = {
        "item_description": "CABO",
        "item_family": "MATERIAL ELETRICO",
        "supplier_name": None,
        "unit": "MT",
        "required_date": None,
        "request_number": "000123",
        "requested_date": date(2025, 1, 6),
        "purchased_date": None,
        "business_month": date(2025, 1, 1),
    }
    key = "000123|010825|BAJSS002-3|"
    a = {"file": "a.xlsx", "sheet": sheet}
    assert_rows(
        result,
        [
            {
                "depot_code": "BAJSS002-3",
                "item_code": "010825",
                "item_description": "CABO FLEXIVEL 2,5MM",
                "item_family": "MATERIAL ELETRICO",
                "supplier_name": "ELETRO NORDESTE LTDA",
                "quantity": 10.0,
                "unit": "MT",
                "required_date": date(2025, 1, 31),
                "request_number": "000123",
                "requested_date": date(2025, 1, 6),
                "purchased_date": date(2025, 1, 10),
                "line_number": 1,
                "business_month": date(2025, 1, 1),
                "_business_key": key + "1",
                **lineage(2, **a),
            },
            {**common, "depot_code": "GERBA", "item_code": "010825", "quantity": 1.0,
             "line_number": 1, "_business_key": "000123|010825|GERBA|1", **lineage(3, **a)},
            {**common, "depot_code": "BAJSS002-3", "item_code": "010825", "quantity": 5.0,
             "line_number": 2, "_business_key": key + "2", **lineage(4, **a)},
            {"depot_code": None, "item_code": "0134", "item_description": "FRETE",
             "item_family": "SERVIÇOS TOMADOS", "supplier_name": None, "quantity": 1.0,
             "unit": None, "required_date": None, "request_number": None, "requested_date": None,
             "purchased_date": None, "line_number": 1, "business_month": None,
             # no request number: only its own file's place identifies it
             "_business_key": f"unkeyed|{SHA_A}|6", **lineage(6, **a)},
            {**common, "depot_code": "BAJSS002-3", "item_code": "010825", "quantity": 2.0,
             "line_number": 3, "_business_key": key + "3", **lineage(7, **a)},
            {**common, "depot_code": "BAJSS002-3", "item_code": "010825", "quantity": 11.0,
             "line_number": 1, "_business_key": key + "1",
             **lineage(2, file="b.xlsx", sheet=sheet, sha=SHA_B, at=T1)},
        ],
        sort_by=by_source,
    )  # fmt: skip


def test_silver_erp_cost_summary_drops_the_pivot_totals():
    bronze = bronze_table(
        "erp_cost_summary",
        [
            {"account": " Manutenção   de Torres ", "net_value_brl": 1500.5},
            {"account": "FRETES", "net_value_brl": 200.0},
            {"account": "Total de Frete Expresso", "net_value_brl": 9.0},  # an account, kept
            {"account": "Total Resultado", "net_value_brl": 1709.5},
            {"account": " TOTAL GERAL ", "net_value_brl": 1709.5},
        ],
        sheet="RESUMO GERAL",
    )

    result = SILVER["erp_cost_summary"].run(bronze=bronze)

    lin = {"sheet": "RESUMO GERAL"}
    assert_rows(
        result,
        [
            {"account": "Manutenção de Torres", "net_value_brl": 1500.5, "business_month": None,
             "_business_key": "MANUTENÇÃO DE TORRES", **lineage(2, **lin)},
            {"account": "FRETES", "net_value_brl": 200.0, "business_month": None,
             "_business_key": "FRETES", **lineage(3, **lin)},
            {"account": "Total de Frete Expresso", "net_value_brl": 9.0, "business_month": None,
             "_business_key": "TOTAL DE FRETE EXPRESSO", **lineage(4, **lin)},
        ],
        sort_by=by_source,
    )  # fmt: skip


def test_silver_erp_sites_upper_cases_and_nulls_blanks():
    bronze = bronze_table(
        "erp_sites",
        [
            {"site_code": " cgm0002-1 ", "site_id": " 17 ", "client_name": " claro s.a. ",
             "client_id": " c01 ", "change_status": None},
            {"site_code": "BAJSS002-3", "site_id": " ", "client_name": "TIM",
             "client_id": "C02", "change_status": " novo site "},
        ],
        sheet="DADOS",
    )  # fmt: skip

    result = SILVER["erp_sites"].run(bronze=bronze)

    assert_rows(
        result,
        [
            {"site_code": "CGM0002-1", "site_id": "17", "client_name": "CLARO S.A.",
             "client_id": "C01", "change_status": None, "business_month": None,
             "_business_key": "CGM0002-1", **lineage(2, sheet="DADOS")},
            {"site_code": "BAJSS002-3", "site_id": None, "client_name": "TIM",
             "client_id": "C02", "change_status": "NOVO SITE", "business_month": None,
             "_business_key": "BAJSS002-3", **lineage(3, sheet="DADOS")},
        ],
        sort_by=by_source,
    )  # fmt: skip


def test_silver_stock_movements_types_lose_their_accents():
    base = {"movement_date": date(2025, 2, 3), "depot_code": "ALMOX-BA", "item_code": "010825",
            "quantity": 1.0, "document_number": "NF-1"}  # fmt: skip
    bronze = bronze_table(
        "stock_movements",
        [
            {**base, "depot_code": " almox-ba ", "item_code": " 010825 ",
             "item_description": " CABO   FLEXIVEL ", "movement_type": " Saída ",
             "quantity": 3.0, "unit": "mt", "document_number": " NF-001 ",
             "unit_cost_brl": 12.5},
            {**base, "movement_type": "TRANSFERÊNCIA"},
            {**base, "movement_type": "entrada", "movement_date": date(2025, 3, 1)},
            {**base, "movement_type": "Ajuste"},
        ],
        file="mov.csv",
    )  # fmt: skip

    result = SILVER["stock_movements"].run(bronze=bronze)

    plain = {"movement_date": date(2025, 2, 3), "depot_code": "ALMOX-BA", "item_code": "010825",
             "item_description": None, "quantity": 1.0, "unit": None, "document_number": "NF-1",
             "unit_cost_brl": None, "business_month": date(2025, 2, 1)}  # fmt: skip
    assert_rows(
        result,
        [
            {**plain, "item_description": "CABO FLEXIVEL", "movement_type": "SAIDA",
             "quantity": 3.0, "unit": "MT", "document_number": "NF-001", "unit_cost_brl": 12.5,
             "_business_key": "NF-001|010825|ALMOX-BA|SAIDA", **lineage(2, file="mov.csv")},
            {**plain, "movement_type": "TRANSFERENCIA",
             "_business_key": "NF-1|010825|ALMOX-BA|TRANSFERENCIA", **lineage(3, file="mov.csv")},
            {**plain, "movement_type": "ENTRADA", "movement_date": date(2025, 3, 1),
             "business_month": date(2025, 3, 1),
             "_business_key": "NF-1|010825|ALMOX-BA|ENTRADA", **lineage(4, file="mov.csv")},
            {**plain, "movement_type": "AJUSTE",
             "_business_key": "NF-1|010825|ALMOX-BA|AJUSTE", **lineage(5, file="mov.csv")},
        ],
        sort_by=by_source,
    )  # fmt: skip


def test_silver_stock_on_hand():
    bronze = bronze_table(
        "stock_on_hand",
        [{"snapshot_date": date(2025, 2, 28), "depot_code": " gerba ", "item_code": " 010825 ",
          "item_description": " CABO  FLEXIVEL ", "quantity_on_hand": 40.0, "unit": " mt ",
          "average_cost_brl": 2.5}],
        file="saldo.csv",
    )  # fmt: skip

    result = SILVER["stock_on_hand"].run(bronze=bronze)

    assert_rows(
        result,
        [{"snapshot_date": date(2025, 2, 28), "depot_code": "GERBA", "item_code": "010825",
          "item_description": "CABO FLEXIVEL", "quantity_on_hand": 40.0, "unit": "MT",
          "average_cost_brl": 2.5, "business_month": date(2025, 2, 1),
          "_business_key": "2025-02-28|GERBA|010825", **lineage(2, file="saldo.csv")}],
    )  # fmt: skip


def test_silver_weather_hourly_located_at_the_nearest_city_or_named_by_coordinates():
    hour = datetime(2025, 1, 31, 23, 0)
    weather = {"temperature_c": 26.5, "relative_humidity_pct": 80.0, "precipitation_mm": 0.2,
               "wind_speed_kmh": 11.0}  # fmt: skip
    bronze = bronze_table(
        "weather_hourly",
        [
            # Open-Meteo's grid cell for Salvador (the real file's coordinates)
            {"observed_at": hour, "latitude": -12.970122, "longitude": -38.45456, **weather},
            {"observed_at": hour + timedelta(hours=1), "latitude": -12.970122,
             "longitude": -38.45456, **weather},
            # near Feira de Santana (-12.27, -38.97)
            {"observed_at": hour, "latitude": -12.25, "longitude": -38.95, **weather},
            # Manaus: no depot city within reach
            {"observed_at": hour, "latitude": -3.1, "longitude": -60.02, **weather},
        ],
        file="openmeteo.json",
    )  # fmt: skip

    result = SILVER["weather_hourly"].run(bronze=bronze, cities=CITIES)

    lin = {"file": "openmeteo.json"}
    jan, feb = date(2025, 1, 1), date(2025, 2, 1)
    assert_rows(
        result,
        [
            {"observed_at": hour, "city": "Salvador", "state": "BA", "latitude": -12.970122,
             "longitude": -38.45456, **weather, "business_month": jan,
             "_business_key": "-12.9701|-38.4546|2025-01-31T23:00", **lineage(2, **lin)},
            {"observed_at": datetime(2025, 2, 1, 0, 0), "city": "Salvador", "state": "BA",
             "latitude": -12.970122, "longitude": -38.45456, **weather, "business_month": feb,
             "_business_key": "-12.9701|-38.4546|2025-02-01T00:00", **lineage(3, **lin)},
            {"observed_at": hour, "city": "Feira de Santana", "state": "BA", "latitude": -12.25,
             "longitude": -38.95, **weather, "business_month": jan,
             "_business_key": "-12.2500|-38.9500|2025-01-31T23:00", **lineage(4, **lin)},
            {"observed_at": hour, "city": "-3.10,-60.02", "state": None, "latitude": -3.1,
             "longitude": -60.02, **weather, "business_month": jan,
             "_business_key": "-3.1000|-60.0200|2025-01-31T23:00", **lineage(5, **lin)},
        ],
        sort_by=by_source,
    )  # fmt: skip


def test_silver_weather_hourly_takes_only_the_nearest_of_two_close_cities():
    cities = pa.table(
        {
            "city": ["Salvador", "Lauro de Freitas"],
            "state": ["BA", "BA"],
            "latitude": [-12.97, -12.89],
            "longitude": [-38.50, -38.33],
        }
    )
    bronze = bronze_table(
        "weather_hourly",
        [{"observed_at": datetime(2025, 1, 6), "latitude": -12.95, "longitude": -38.45}],
    )

    result = SILVER["weather_hourly"].run(bronze=bronze, cities=cities)

    # distances: Salvador (0.02, 0.05), Lauro de Freitas (0.06, 0.12)
    assert result.column("city").to_pylist() == ["Salvador"]


def test_silver_weather_daily_aggregates_hours_per_city_and_day():
    def hour(day, h, city, temp, humidity, rain, wind):
        return {"observed_at": datetime(2025, 1, day, h), "city": city, "state": "BA",
                "temperature_c": temp, "relative_humidity_pct": humidity,
                "precipitation_mm": rain, "wind_speed_kmh": wind}  # fmt: skip

    hourly = table_of(
        silver_schema("weather_hourly"),
        [
            hour(6, 0, "Salvador", 24.0, 80.0, 0.0, 10.0),
            hour(7, 0, "Salvador", 27.0, 60.0, 0.0, 8.0),
            hour(6, 1, "Salvador", 26.0, 70.0, 1.5, 14.0),
            hour(6, 10, "Feira de Santana", 30.0, 50.0, None, None),
            hour(6, 23, "Salvador", 25.0, 90.0, 0.5, 12.0),
        ],
    )

    result = SILVER_DERIVED["weather_hourly"].run(silver_weather_hourly=hourly)

    jan = date(2025, 1, 1)
    assert_rows(
        result,
        [
            # one hour: the sums of nothing stay null
            {"weather_date": date(2025, 1, 6), "city": "Feira de Santana", "state": "BA",
             "temperature_mean_c": 30.0, "temperature_min_c": 30.0, "temperature_max_c": 30.0,
             "precipitation_mm": None, "humidity_mean_pct": 50.0, "wind_max_kmh": None,
             "hours": 1, "business_month": jan},
            # 24, 26, 25 -> mean 25; rain 0 + 1.5 + 0.5 = 2; humidity (80 + 70 + 90) / 3 = 80
            {"weather_date": date(2025, 1, 6), "city": "Salvador", "state": "BA",
             "temperature_mean_c": 25.0, "temperature_min_c": 24.0, "temperature_max_c": 26.0,
             "precipitation_mm": 2.0, "humidity_mean_pct": 80.0, "wind_max_kmh": 14.0,
             "hours": 3, "business_month": jan},
            {"weather_date": date(2025, 1, 7), "city": "Salvador", "state": "BA",
             "temperature_mean_c": 27.0, "temperature_min_c": 27.0, "temperature_max_c": 27.0,
             "precipitation_mm": 0.0, "humidity_mean_pct": 60.0, "wind_max_kmh": 8.0,
             "hours": 1, "business_month": jan},
        ],
    )  # fmt: skip


def test_silver_selic():
    bronze = bronze_table(
        "selic",
        [{"rate_date": date(2025, 1, 3), "rate_pct": 12.25}],
        file="selic.json",
    )

    result = SILVER["selic"].run(bronze=bronze)

    assert_rows(
        result,
        [{"rate_date": date(2025, 1, 3), "rate_pct": 12.25, "business_month": date(2025, 1, 1),
          "_business_key": "2025-01-03", **lineage(2, file="selic.json")}],
    )  # fmt: skip


def test_silver_ptax_usd_keeps_every_bulletin_without_accents():
    opening = datetime(2025, 1, 6, 10, 6, 25, 45000)
    closing = datetime(2025, 1, 6, 13, 8, 59, 976000)
    bronze = bronze_table(
        "ptax_usd",
        [
            {"quoted_at": opening, "buy_rate": 6.10, "sell_rate": 6.11,
             "bulletin_type": "Abertura"},
            {"quoted_at": opening, "buy_rate": 6.12, "sell_rate": 6.13,
             "bulletin_type": " Intermediário "},
            {"quoted_at": closing, "buy_rate": 6.14, "sell_rate": 6.15,
             "bulletin_type": "Fechamento", "buy_parity": 1.0, "sell_parity": 1.0},
        ],
        file="ptax.json",
    )  # fmt: skip

    result = SILVER["ptax_usd"].run(bronze=bronze)

    day, jan, lin = date(2025, 1, 6), date(2025, 1, 1), {"file": "ptax.json"}
    assert_rows(
        result,
        [
            {"quoted_at": opening, "quote_date": day, "buy_rate": 6.10, "sell_rate": 6.11,
             "bulletin_type": "ABERTURA", "business_month": jan,
             "_business_key": "2025-01-06T10:06:25.045000|ABERTURA", **lineage(2, **lin)},
            {"quoted_at": opening, "quote_date": day, "buy_rate": 6.12, "sell_rate": 6.13,
             "bulletin_type": "INTERMEDIARIO", "business_month": jan,
             "_business_key": "2025-01-06T10:06:25.045000|INTERMEDIARIO", **lineage(3, **lin)},
            {"quoted_at": closing, "quote_date": day, "buy_rate": 6.14, "sell_rate": 6.15,
             "bulletin_type": "FECHAMENTO", "business_month": jan,
             "_business_key": "2025-01-06T13:08:59.976000|FECHAMENTO", **lineage(4, **lin)},
        ],
        sort_by=by_source,
    )  # fmt: skip


def test_silver_ptax_usd_daily_prefers_the_closing_bulletin_else_the_last_quote():
    def quote(day, h, kind, rate):
        return {"quoted_at": datetime(2025, 1, day, h), "quote_date": date(2025, 1, day),
                "buy_rate": rate - 0.01, "sell_rate": rate, "bulletin_type": kind}  # fmt: skip

    silver = table_of(
        silver_schema("ptax_usd"),
        [
            # the 6th: an intermediate quote AFTER the closing one; the closing still wins
            quote(6, 14, "INTERMEDIARIO", 6.30),
            quote(6, 10, "ABERTURA", 6.00),
            quote(6, 13, "FECHAMENTO", 6.20),
            # the 7th: no closing bulletin (yet): the day's last quote, flagged
            quote(7, 11, "INTERMEDIARIO", 6.50),
            quote(7, 10, "ABERTURA", 6.40),
        ],
    )

    result = SILVER_DERIVED["ptax_usd"].run(silver_ptax_usd=silver)

    jan = date(2025, 1, 1)
    assert_rows(
        result,
        [
            {"quote_date": date(2025, 1, 6), "buy_rate": 6.19, "sell_rate": 6.20,
             "is_closing_rate": True, "bulletins": 3, "business_month": jan},
            {"quote_date": date(2025, 1, 7), "buy_rate": 6.49, "sell_rate": 6.50,
             "is_closing_rate": False, "bulletins": 2, "business_month": jan},
        ],
    )  # fmt: skip


def test_silver_ipca():
    bronze = bronze_table(
        "ipca",
        [{"month": date(2025, 1, 1), "value_pct": 0.16, "variable_code": " 63 ",
          "variable": " IPCA - Variação mensal ", "territory": "Brasil"}],
        file="ipca.json",
    )  # fmt: skip

    result = SILVER["ipca"].run(bronze=bronze)

    assert_rows(
        result,
        [{"month": date(2025, 1, 1), "value_pct": 0.16, "variable_code": "63",
          "variable": "IPCA - Variação mensal", "business_month": date(2025, 1, 1),
          "_business_key": "63|2025-01-01", **lineage(2, file="ipca.json")}],
    )  # fmt: skip


# --- gold ------------------------------------------------------------------------------------


def requisition(**values: Any) -> dict[str, Any]:
    """A silver requisition line; business_month follows requested_date like the SQL's."""
    row = {
        "depot_code": "GERBA",
        "item_code": "010825",
        "item_description": "CABO",
        "item_family": "MATERIAL ELETRICO",
        "quantity": 1.0,
        "unit": "UN",
        "request_number": "R1",
        "requested_date": date(2025, 1, 6),
        "line_number": 1,
        "_source_file": "export.xlsx",
        "_source_sheet": "CUSTO DE MATERIAL E SERVIÇOS",
        "_content_sha256": SHA_A,
        "_ingested_at": T0,
        **values,
    }
    row.setdefault("business_month", month_start(row["requested_date"]))
    return row


def requisitions(*rows: dict[str, Any]) -> pa.Table:
    numbered = [{"_source_row": i + 2, **r} for i, r in enumerate(rows)]
    return table_of(silver_schema("erp_requisitions"), numbered)


def test_gold_fact_demand_groups_by_day_item_site_and_drops_non_demand():
    silver = requisitions(
        requisition(depot_code="BAJSS002-3", quantity=10.0, request_number="1"),
        requisition(depot_code="BAJSS002-3", quantity=5.0, request_number="1", line_number=2),
        requisition(depot_code="BAJSS002-3", quantity=2.0, request_number="2"),
        requisition(depot_code=None, quantity=3.0, request_number="3"),
        requisition(depot_code=None, quantity=1.0, request_number=None),
        requisition(requested_date=date(2025, 1, 7), quantity=0.0),  # not demand
        requisition(requested_date=date(2025, 1, 7), quantity=-2.0),  # a return, not demand
        requisition(item_code="0134", requested_date=None, quantity=4.0),  # no date
        requisition(item_code="0134", requested_date=date(2025, 2, 3), quantity=1.5,
                    request_number="4"),
    )  # fmt: skip

    result = GOLD["fact_demand"].run(silver_erp_requisitions=silver)

    assert_rows(
        result,
        [
            # 10 + 5 + 2 over 3 lines of requests {1, 2}
            {"demand_date": date(2025, 1, 6), "item_code": "010825", "site_code": "BAJSS002-3",
             "quantity": 17.0, "request_lines": 3, "requests": 2,
             "business_month": date(2025, 1, 1)},
            # 3 + 1 over 2 lines; a line without a request number is not a request
            {"demand_date": date(2025, 1, 6), "item_code": "010825", "site_code": "UNKNOWN",
             "quantity": 4.0, "request_lines": 2, "requests": 1,
             "business_month": date(2025, 1, 1)},
            {"demand_date": date(2025, 2, 3), "item_code": "0134", "site_code": "GERBA",
             "quantity": 1.5, "request_lines": 1, "requests": 1,
             "business_month": date(2025, 2, 1)},
        ],
    )  # fmt: skip


def test_gold_fact_lead_time_one_row_per_dated_line_negative_kept():
    silver = requisitions(
        requisition(supplier_name="ALFA", request_number="10", requested_date=date(2025, 1, 6),
                    purchased_date=date(2025, 1, 16), quantity=2.0),
        requisition(depot_code=None, request_number="11", requested_date=date(2025, 1, 8),
                    purchased_date=date(2025, 1, 5)),  # bought 3 days BEFORE the request
        requisition(request_number="12", requested_date=date(2025, 1, 7), purchased_date=None),
        requisition(request_number="13", requested_date=None, purchased_date=date(2025, 1, 9)),
    )  # fmt: skip

    result = GOLD["fact_lead_time"].run(silver_erp_requisitions=silver)

    line = {"item_code": "010825", "line_number": 1, "business_month": date(2025, 1, 1),
            "_source_file": "export.xlsx", "_content_sha256": SHA_A}  # fmt: skip
    assert_rows(
        result,
        [
            {**line, "site_code": "GERBA", "supplier_name": "ALFA", "request_number": "10",
             "requested_date": date(2025, 1, 6), "purchased_date": date(2025, 1, 16),
             "lead_time_days": 10, "quantity": 2.0, "_source_row": 2},
            {**line, "site_code": "GERBA", "supplier_name": None, "request_number": "12",
             "requested_date": date(2025, 1, 7), "purchased_date": None,
             "lead_time_days": None, "quantity": 1.0, "_source_row": 4},
            {**line, "site_code": "UNKNOWN", "supplier_name": None, "request_number": "11",
             "requested_date": date(2025, 1, 8), "purchased_date": date(2025, 1, 5),
             "lead_time_days": -3, "quantity": 1.0, "_source_row": 3},
        ],
    )  # fmt: skip


# Weekly demand series, Mondays W[0] (2025-01-06) .. W[7] (2025-02-24).
W = [date(2025, 1, 6) + timedelta(weeks=k) for k in range(8)]


def test_gold_dim_item_latest_description_and_the_four_demand_classes():
    late = {"_content_sha256": SHA_B, "_ingested_at": T1, "_source_file": "b.xlsx"}
    s = {
        "item_code": "S001",
        "item_family": "MATERIAL ELETRICO",
        "unit": "MT",
        "item_description": "CABO VELHO",
        "depot_code": "SITE-A",
    }
    e = {
        "item_code": "E002",
        "item_family": "EPI",
        "unit": "PR",
        "item_description": "LUVA VELHA",
        "depot_code": "SITE-A",
    }
    i = {
        "item_code": "I003",
        "item_family": "FERRAGENS",
        "unit": "UN",
        "item_description": "PARAFUSO M8",
        "depot_code": "SITE-A",
    }
    lumpy = {
        "item_code": "L004",
        "item_family": "CONSUMIVEIS",
        "unit": "KG",
        "depot_code": "SITE-A",
    }
    lines = [
        # smooth: every week, sizes 9, 11, 9, ... (week 0 split over two days and sites)
        {**s, "requested_date": W[0], "quantity": 4.0},
        {**s, "requested_date": W[0] + timedelta(days=4), "quantity": 5.0, "depot_code": "SITE-B"},
        *({**s, "requested_date": W[k], "quantity": 11.0 if k % 2 else 9.0} for k in range(1, 7)),
        {**s, "requested_date": W[7] + timedelta(days=2), "quantity": 11.0,
         "item_description": "CABO NOVO"},
        # erratic: every week, sizes 1, 19, 1, ...; the last week in two lines on one day, the
        # later-ingested file's description wins the tie on date
        *({**e, "requested_date": W[k], "quantity": 19.0 if k % 2 else 1.0} for k in range(7)),
        {**e, "requested_date": W[7], "quantity": 10.0},
        {**e, "requested_date": W[7], "quantity": 9.0, "depot_code": "SITE-B",
         "item_description": "LUVA NOVA", **late},
        # intermittent: weeks 1, 4, 7 (first demand in week 1), sizes 4, 6, 5
        {**i, "requested_date": W[1], "quantity": 4.0},
        {**i, "requested_date": W[4], "quantity": 6.0},
        {**i, "requested_date": W[7], "quantity": 5.0},
        # lumpy: weeks 0 and 4, sizes 1 and 9; an undated later line names nothing
        {**lumpy, "requested_date": W[0], "quantity": 1.0, "item_description": "GRAXA"},
        {**lumpy, "requested_date": W[4], "quantity": 9.0, "item_description": "GRAXA AZUL"},
        {**lumpy, "requested_date": None, "quantity": 3.0, "item_description": "IGNORADA", **late},
        # no demand: a zero-quantity line only
        {"item_code": "Z005", "item_family": "EPI", "unit": "UN", "item_description": "CAPACETE",
         "requested_date": W[2], "quantity": 0.0},
    ]  # fmt: skip
    silver = requisitions(*(requisition(**line) for line in lines))
    # fact_demand as its SQL would make it from these lines: every dated positive line is its
    # own (day, item, site) here
    demand = table_of(
        gold_schema("fact_demand"),
        [
            {"demand_date": r["requested_date"], "item_code": r["item_code"],
             "site_code": r["depot_code"], "quantity": r["quantity"], "request_lines": 1,
             "requests": 1, "business_month": month_start(r["requested_date"])}
            for r in lines
            if r["requested_date"] is not None and r["quantity"] > 0
        ],
    )  # fmt: skip

    result = GOLD["dim_item"].run(silver_erp_requisitions=silver, gold_fact_demand=demand)

    assert_rows(
        result,
        [
            # 8 of 8 weeks -> ADI 1; sizes +-9 around 10 -> CV2 = 81 / 100
            {"item_code": "E002", "item_description": "LUVA NOVA", "item_family": "EPI",
             "unit": "PR", "first_seen": W[0], "last_seen": W[7], "request_lines": 9,
             "total_quantity": 80.0, "adi": 1.0, "cv2": 0.81, "demand_class": "erratic"},
            # weeks 1..7 = 7 weeks, 3 with demand -> ADI 7/3; sizes 4, 6, 5: mean 5,
            # population variance 2/3 -> CV2 = (2/3) / 25
            {"item_code": "I003", "item_description": "PARAFUSO M8", "item_family": "FERRAGENS",
             "unit": "UN", "first_seen": W[1], "last_seen": W[7], "request_lines": 3,
             "total_quantity": 15.0, "adi": 7 / 3, "cv2": 2 / 75,
             "demand_class": "intermittent"},
            # 8 weeks, 2 with demand -> ADI 4; sizes 1, 9: mean 5, std 4 -> CV2 = 16/25
            {"item_code": "L004", "item_description": "GRAXA AZUL", "item_family": "CONSUMIVEIS",
             "unit": "KG", "first_seen": W[0], "last_seen": W[4], "request_lines": 3,
             "total_quantity": 13.0, "adi": 4.0, "cv2": 0.64, "demand_class": "lumpy"},
            # 8 of 8 weeks -> ADI 1; sizes +-1 around 10 -> CV2 = 1 / 100
            {"item_code": "S001", "item_description": "CABO NOVO",
             "item_family": "MATERIAL ELETRICO", "unit": "MT", "first_seen": W[0],
             "last_seen": W[7] + timedelta(days=2), "request_lines": 9, "total_quantity": 80.0,
             "adi": 1.0, "cv2": 0.01, "demand_class": "smooth"},
            {"item_code": "Z005", "item_description": "CAPACETE", "item_family": "EPI",
             "unit": "UN", "first_seen": W[2], "last_seen": W[2], "request_lines": 1,
             "total_quantity": 0.0, "adi": None, "cv2": None, "demand_class": "no_demand"},
        ],
    )  # fmt: skip


def test_gold_dim_site_holds_every_depot_and_unknown_with_state_and_client():
    silver = requisitions(
        requisition(depot_code="ALMOX-BA", requested_date=date(2025, 1, 6)),
        requisition(depot_code="ALMOX-BA", requested_date=date(2025, 3, 10)),
        requisition(depot_code="GERBA", requested_date=date(2025, 2, 1)),
        requisition(depot_code="GERBA", requested_date=None),
        requisition(depot_code="BAJSS002-3", requested_date=date(2025, 1, 20)),
        requisition(depot_code="ESCRITORIO", requested_date=date(2025, 1, 21)),
        requisition(depot_code="ALMOX-XX", requested_date=date(2025, 1, 22)),  # no such UF
        requisition(depot_code=None, requested_date=date(2025, 1, 23)),
    )
    sites = table_of(
        silver_schema("erp_sites"),
        [
            {"site_code": "BAJSS002-3", "site_id": "101", "client_name": "CLARO",
             "client_id": "7", "_business_key": "BAJSS002-3", "_source_row": 3,
             "_content_sha256": SHA_A, "_ingested_at": T0},
            {"site_code": "CGM0002-1", "site_id": "102", "client_name": "TIM",
             "client_id": "8", "_business_key": "CGM0002-1", "_source_row": 4,
             "_content_sha256": SHA_A, "_ingested_at": T0},
            {"site_code": "SEAJU001-1", "site_id": "103", "client_name": "VIVO",
             "client_id": "9", "_business_key": "SEAJU001-1", "_source_row": 5,
             "_content_sha256": SHA_A, "_ingested_at": T0},
        ],
    )  # fmt: skip

    stock = table_of(
        silver_schema("stock_on_hand"),
        [
            {"snapshot_date": date(2025, 2, 28), "depot_code": depot, "item_code": "010825",
             "quantity_on_hand": 1.0}
            for depot in ("GERBA", "ALMOX-SE")  # ALMOX-SE holds stock, never requested
        ],
    )  # fmt: skip

    result = GOLD["dim_site"].run(
        silver_erp_requisitions=silver,
        silver_erp_sites=sites,
        silver_stock_on_hand=stock,
        states=STATES,
    )

    no_client = {"site_id": None, "client_name": None, "client_id": None, "in_sites_sheet": False}
    unseen = {"first_seen": None, "last_seen": None, "request_lines": 0, "in_sites_sheet": True}
    assert_rows(
        result,
        [
            {"site_code": "ALMOX-BA", **no_client, "state": "BA", "state_name": "Bahia",
             "first_seen": date(2025, 1, 6), "last_seen": date(2025, 3, 10),
             "request_lines": 2},
            {"site_code": "ALMOX-SE", **no_client, "state": "SE", "state_name": "Sergipe",
             "first_seen": None, "last_seen": None, "request_lines": 0},
            {"site_code": "ALMOX-XX", **no_client, "state": None, "state_name": None,
             "first_seen": date(2025, 1, 22), "last_seen": date(2025, 1, 22),
             "request_lines": 1},
            {"site_code": "BAJSS002-3", "site_id": "101", "client_name": "CLARO",
             "client_id": "7", "state": "BA", "state_name": "Bahia",
             "first_seen": date(2025, 1, 20), "last_seen": date(2025, 1, 20),
             "request_lines": 1, "in_sites_sheet": True},
            {"site_code": "CGM0002-1", "site_id": "102", "client_name": "TIM",
             "client_id": "8", "state": None, "state_name": None, **unseen},
            {"site_code": "ESCRITORIO", **no_client, "state": None, "state_name": None,
             "first_seen": date(2025, 1, 21), "last_seen": date(2025, 1, 21),
             "request_lines": 1},
            {"site_code": "GERBA", **no_client, "state": "BA", "state_name": "Bahia",
             "first_seen": date(2025, 2, 1), "last_seen": date(2025, 2, 1),
             "request_lines": 2},
            {"site_code": "SEAJU001-1", "site_id": "103", "client_name": "VIVO",
             "client_id": "9", "state": "SE", "state_name": "Sergipe", **unseen},
            # the member the facts map a line without a depot to
            {"site_code": "UNKNOWN", **no_client, "state": None, "state_name": None,
             "first_seen": date(2025, 1, 23), "last_seen": date(2025, 1, 23),
             "request_lines": 1},
        ],
    )  # fmt: skip


def test_gold_dim_supplier_lead_time_statistics():
    def line(supplier, request, days, requested):
        return {"supplier_name": supplier, "request_number": request, "lead_time_days": days,
                "requested_date": requested, "item_code": "010825"}  # fmt: skip

    fact = table_of(
        gold_schema("fact_lead_time"),
        [
            line("ALFA", "R1", 2, date(2025, 1, 2)),
            line("ALFA", "R1", 4, date(2025, 1, 3)),
            line("ALFA", "R2", 6, date(2025, 1, 10)),
            line("ALFA", "R3", 20, date(2025, 2, 1)),
            line("ALFA", "R4", -1, date(2025, 3, 1)),  # bought before requested: left out
            line("ALFA", "R5", None, date(2025, 3, 2)),  # not bought yet: left out
            line("BETA", "R9", 5, date(2025, 1, 15)),
            line(None, "R8", 3, date(2025, 4, 1)),
        ],
    )

    result = GOLD["dim_supplier"].run(gold_fact_lead_time=fact)

    assert_rows(
        result,
        [
            # 2, 4, 6, 20: mean 8; squared deviations 36 + 16 + 4 + 144 = 200 -> sample std
            # sqrt(200 / 3); p50 halfway between 4 and 6; p90 at rank 0.9 * 3 = 2.7:
            # 6 + 0.7 * (20 - 6) = 15.8
            {"supplier_name": "ALFA", "order_count": 3, "line_count": 4,
             "lead_time_mean_days": 8.0, "lead_time_std_days": math.sqrt(200 / 3),
             "lead_time_p50_days": 5.0, "lead_time_p90_days": 15.8, "lead_time_min_days": 2,
             "lead_time_max_days": 20, "last_order_date": date(2025, 2, 1)},
            {"supplier_name": "BETA", "order_count": 1, "line_count": 1,
             "lead_time_mean_days": 5.0, "lead_time_std_days": None,
             "lead_time_p50_days": 5.0, "lead_time_p90_days": 5.0, "lead_time_min_days": 5,
             "lead_time_max_days": 5, "last_order_date": date(2025, 1, 15)},
        ],
    )  # fmt: skip


def test_gold_dim_date_calendar_holidays_and_business_days():
    bounds = pa.table(
        {
            "first_date": pa.array([date(2025, 6, 30)], pa.date32()),
            "last_date": pa.array([date(2025, 9, 8)], pa.date32()),
        }
    )

    result = GOLD["dim_date"].run(bounds=bounds, holidays=holidays_table(2025, 2026))

    days = {r["calendar_date"]: r for r in result.to_pylist()}
    # 2025-06-30 .. 2026-09-08 (the last day plus a year):
    # Jun 30 (1) + Jul..Dec 2025 (184) + Jan..Aug 2026 (243) + Sep 1..8 (8)
    assert result.num_rows == 1 + 184 + 243 + 8
    assert min(days) == date(2025, 6, 30)
    assert max(days) == date(2026, 9, 8)
    plain = {"is_weekend": False, "is_national_holiday": False, "is_bahia_holiday": False,
             "holiday_name": None, "is_business_day": True}  # fmt: skip
    assert days[date(2025, 6, 30)] == {
        "calendar_date": date(2025, 6, 30), "year": 2025, "quarter": 2, "month": 6,
        "iso_week": 27, "iso_weekday": 1, "week_start": date(2025, 6, 30),
        "month_start": date(2025, 6, 1), **plain,
    }  # fmt: skip
    # Bahia's independence day, a Wednesday: a holiday there, not nationally
    assert days[date(2025, 7, 2)] == {
        "calendar_date": date(2025, 7, 2), "year": 2025, "quarter": 3, "month": 7,
        "iso_week": 27, "iso_weekday": 3, "week_start": date(2025, 6, 30),
        "month_start": date(2025, 7, 1), "is_weekend": False, "is_national_holiday": False,
        "is_bahia_holiday": True, "holiday_name": "Bahia Independence Day",
        "is_business_day": False,
    }  # fmt: skip
    assert days[date(2025, 7, 5)] == {
        "calendar_date": date(2025, 7, 5), "year": 2025, "quarter": 3, "month": 7,
        "iso_week": 27, "iso_weekday": 6, "week_start": date(2025, 6, 30),
        "month_start": date(2025, 7, 1), **plain, "is_weekend": True, "is_business_day": False,
    }  # fmt: skip
    # Independence Day (national) falls on a Sunday in 2025
    assert days[date(2025, 9, 7)] == {
        "calendar_date": date(2025, 9, 7), "year": 2025, "quarter": 3, "month": 9,
        "iso_week": 36, "iso_weekday": 7, "week_start": date(2025, 9, 1),
        "month_start": date(2025, 9, 1), "is_weekend": True, "is_national_holiday": True,
        "is_bahia_holiday": False, "holiday_name": "Independence Day", "is_business_day": False,
    }  # fmt: skip
    # ISO week 1 of 2026 starts on Monday 2025-12-29
    assert days[date(2025, 12, 29)] == {
        "calendar_date": date(2025, 12, 29), "year": 2025, "quarter": 4, "month": 12,
        "iso_week": 1, "iso_weekday": 1, "week_start": date(2025, 12, 29),
        "month_start": date(2025, 12, 1), **plain,
    }  # fmt: skip
    assert days[date(2025, 12, 25)]["is_national_holiday"] is True
    assert days[date(2025, 12, 25)]["is_business_day"] is False
    # July 2025: 23 weekdays, one of them (the 2nd) a Bahia holiday
    july = [r for d, r in days.items() if d.year == 2025 and d.month == 7]
    assert sum(r["is_business_day"] for r in july) == 22
    assert sum(r["is_weekend"] for r in july) == 8


def test_gold_fact_external_daily_carries_rates_over_the_weekend():
    dates = [date(2025, 1, 30) + timedelta(days=k) for k in range(7)]  # Thu 30 .. Wed Feb 5
    dim_date = table_of(gold_schema("dim_date"), [{"calendar_date": d} for d in dates])

    def weather(day, city, mean, low, high, rain, humidity):
        return {"weather_date": day, "city": city, "temperature_mean_c": mean,
                "temperature_min_c": low, "temperature_max_c": high, "precipitation_mm": rain,
                "humidity_mean_pct": humidity}  # fmt: skip

    weather_daily = table_of(
        silver_schema("weather_daily"),
        [
            weather(date(2025, 1, 31), "Salvador", 26.0, 24.0, 29.0, 2.0, 80.0),
            weather(date(2025, 1, 31), "Feira de Santana", 24.0, 20.0, 30.0, 0.0, 60.0),
            weather(date(2025, 2, 1), "Salvador", 27.0, 25.0, 30.0, None, 75.0),
        ],
    )
    selic = table_of(
        silver_schema("selic"),
        [
            {"rate_date": date(2025, 1, 30), "rate_pct": 12.15},
            {"rate_date": date(2025, 1, 31), "rate_pct": 13.15},
            {"rate_date": date(2025, 2, 3), "rate_pct": 13.25},
        ],
    )
    ptax = table_of(
        silver_schema("ptax_usd_daily"),
        [
            {"quote_date": date(2025, 1, 30), "sell_rate": 5.90},
            {"quote_date": date(2025, 1, 31), "sell_rate": 5.84},
            {"quote_date": date(2025, 2, 3), "sell_rate": 5.80},
            {"quote_date": date(2025, 2, 4), "sell_rate": 5.78},
        ],
    )
    ipca = table_of(
        silver_schema("ipca"),
        [
            {"month": date(2025, 1, 1), "value_pct": 0.16, "variable_code": "63"},
            {"month": date(2025, 2, 1), "value_pct": 1.31, "variable_code": "63"},
            {"month": date(2025, 1, 1), "value_pct": 7000.0, "variable_code": "2266"},  # index
        ],
    )

    result = GOLD["fact_external_daily"].run(
        gold_dim_date=dim_date,
        silver_weather_daily=weather_daily,
        silver_selic=selic,
        silver_ptax_usd_daily=ptax,
        silver_ipca=ipca,
    )

    no_weather = {"temperature_mean_c": None, "temperature_min_c": None,
                  "temperature_max_c": None, "precipitation_mm": None,
                  "humidity_mean_pct": None}  # fmt: skip

    def day(d, selic, selic_carried, ptax, ptax_carried, ipca, **weather):
        return {"calendar_date": d, **no_weather, **weather, "selic_rate_pct": selic,
                "selic_is_carried": selic_carried, "ptax_usd_sell": ptax,
                "ptax_is_carried": ptax_carried, "ipca_month_pct": ipca}  # fmt: skip

    assert_rows(
        result,
        [
            day(date(2025, 1, 30), 12.15, False, 5.90, False, 0.16),
            # two cities: means averaged (25, rain 1, humidity 70), min of mins, max of maxes
            day(date(2025, 1, 31), 13.15, False, 5.84, False, 0.16, temperature_mean_c=25.0,
                temperature_min_c=20.0, temperature_max_c=30.0, precipitation_mm=1.0,
                humidity_mean_pct=70.0),
            day(date(2025, 2, 1), 13.15, True, 5.84, True, 1.31, temperature_mean_c=27.0,
                temperature_min_c=25.0, temperature_max_c=30.0, humidity_mean_pct=75.0),
            day(date(2025, 2, 2), 13.15, True, 5.84, True, 1.31),
            day(date(2025, 2, 3), 13.25, False, 5.80, False, 1.31),
            day(date(2025, 2, 4), 13.25, True, 5.78, False, 1.31),
            # 2025-02-05 is past the last day any source knows: not a row
        ],
    )  # fmt: skip


def test_gold_fact_external_daily_nothing_is_carried_before_the_first_rate():
    dates = [date(2025, 1, 29), date(2025, 1, 30)]
    result = GOLD["fact_external_daily"].run(
        gold_dim_date=table_of(gold_schema("dim_date"), [{"calendar_date": d} for d in dates]),
        silver_weather_daily=silver_schema("weather_daily").empty_table(),
        silver_selic=table_of(silver_schema("selic"), [{"rate_date": dates[1], "rate_pct": 12.15}]),
        silver_ptax_usd_daily=table_of(
            silver_schema("ptax_usd_daily"), [{"quote_date": dates[1], "sell_rate": 5.9}]
        ),
        silver_ipca=silver_schema("ipca").empty_table(),
    )
    first = result.to_pylist()[0]
    assert (first["selic_rate_pct"], first["selic_is_carried"]) == (None, False)
    assert (first["ptax_usd_sell"], first["ptax_is_carried"]) == (None, False)


def test_gold_fact_stock_values_the_balance():
    def balance(day, site, item, quantity, cost, unit="UN"):
        return {"snapshot_date": day, "depot_code": site, "item_code": item,
                "quantity_on_hand": quantity, "average_cost_brl": cost, "unit": unit}  # fmt: skip

    silver = table_of(
        silver_schema("stock_on_hand"),
        [
            balance(date(2025, 2, 28), "GERBA", "010825", 40.0, 2.5, "MT"),
            balance(date(2025, 2, 28), "ALMOX-BA", "0134", 3.0, None),
            balance(date(2025, 1, 31), "GERBA", "010825", 10.0, 2.0, "MT"),
        ],
    )

    result = GOLD["fact_stock"].run(silver_stock_on_hand=silver)

    assert_rows(
        result,
        [
            {"snapshot_date": date(2025, 1, 31), "site_code": "GERBA", "item_code": "010825",
             "quantity_on_hand": 10.0, "average_cost_brl": 2.0, "stock_value_brl": 20.0,
             "unit": "MT"},
            {"snapshot_date": date(2025, 2, 28), "site_code": "ALMOX-BA", "item_code": "0134",
             "quantity_on_hand": 3.0, "average_cost_brl": None, "stock_value_brl": None,
             "unit": "UN"},
            {"snapshot_date": date(2025, 2, 28), "site_code": "GERBA", "item_code": "010825",
             "quantity_on_hand": 40.0, "average_cost_brl": 2.5, "stock_value_brl": 100.0,
             "unit": "MT"},
        ],
    )  # fmt: skip


# --- mart_features ---------------------------------------------------------------------------


def calendar(first: date, last: date, holidays: dict[date, str]) -> pa.Table:
    """gold.dim_date rows for [first, last], holidays given as {day: 'national' | 'BA'}."""
    rows = []
    day = first
    while day <= last:
        iso = day.isocalendar()
        scope = holidays.get(day)
        rows.append(
            {
                "calendar_date": day,
                "year": day.year,
                "quarter": (day.month - 1) // 3 + 1,
                "month": day.month,
                "iso_week": iso.week,
                "iso_weekday": iso.weekday,
                "week_start": day - timedelta(days=iso.weekday - 1),
                "month_start": day.replace(day=1),
                "is_weekend": iso.weekday >= 6,
                "is_national_holiday": scope == "national",
                "is_bahia_holiday": scope == "BA",
                "holiday_name": scope,
                "is_business_day": iso.weekday < 6 and scope is None,
            }
        )
        day += timedelta(days=1)
    return table_of(gold_schema("dim_date"), rows)


# Six weeks of data, Mondays M[0] (2025-01-06, ISO week 2) .. M[5] (2025-02-10, ISO week 7).
M = [date(2025, 1, 6) + timedelta(weeks=k) for k in range(6)]


def mart_inputs() -> dict[str, pa.Table]:
    def demand(day, item, site, quantity, lines=1):
        return {"demand_date": day, "item_code": item, "site_code": site, "quantity": quantity,
                "request_lines": lines, "requests": lines,
                "business_month": month_start(day)}  # fmt: skip

    fact_demand = table_of(
        gold_schema("fact_demand"),
        [
            demand(M[0], "A1", "S1", 4.0, lines=1),
            demand(M[0] + timedelta(days=2), "A1", "S2", 2.0, lines=2),
            demand(M[2] + timedelta(days=2), "A1", "S1", 3.0),
            demand(M[4], "A1", "S1", 9.0),
            demand(M[1], "A2", "S1", 5.0),
            demand(M[4] + timedelta(days=1), "A2", "S1", 1.0),
            demand(M[5], "A2", "S1", 2.0),
            demand(M[0] + timedelta(days=2), "B1", "S3", 2.0),
        ],
    )
    dim_item = table_of(
        gold_schema("dim_item"),
        [
            {"item_code": "A1", "item_family": "EPI", "demand_class": "smooth",
             "first_seen": M[0]},
            {"item_code": "A2", "item_family": "EPI", "demand_class": "lumpy",
             "first_seen": M[1]},
            {"item_code": "B1", "item_family": "CABOS", "demand_class": "intermittent",
             "first_seen": M[0] + timedelta(days=2)},
            {"item_code": "N0", "item_family": "EPI", "demand_class": "no_demand",
             "first_seen": None},
        ],
    )  # fmt: skip
    dim_date = calendar(
        M[0],
        M[5] + timedelta(days=13),  # a week beyond the last week with demand
        {M[2] + timedelta(days=2): "national", M[4] + timedelta(days=1): "BA"},
    )

    def external(day, temp, rain, humidity, selic, ptax, ipca=0.16):
        return {"calendar_date": day, "temperature_mean_c": temp, "precipitation_mm": rain,
                "humidity_mean_pct": humidity, "selic_rate_pct": selic, "ptax_usd_sell": ptax,
                "ipca_month_pct": ipca}  # fmt: skip

    week_one = [M[0] + timedelta(days=k) for k in range(7)]
    fact_external = table_of(
        gold_schema("fact_external_daily"),
        [
            *(external(d, 20.0 + k, 1.0, 70.0, 13.0, 5.0 if k < 5 else 6.0)
              for k, d in enumerate(week_one)),
            external(M[1], 30.0, 2.0, None, 14.0, None),
        ],
    )  # fmt: skip

    def lead(item, days):
        return {"item_code": item, "lead_time_days": days}

    fact_lead_time = table_of(
        gold_schema("fact_lead_time"),
        [lead("A1", 2), lead("A1", 10), lead("A1", -5), lead("A1", None), lead("B1", 3)],
    )
    return {
        "gold_fact_demand": fact_demand,
        "gold_dim_item": dim_item,
        "gold_dim_date": dim_date,
        "gold_fact_external_daily": fact_external,
        "gold_fact_lead_time": fact_lead_time,
    }


def expected_mart() -> list[dict[str, Any]]:
    """Worked out by hand; rolling statistics over the PAST weeks of the item's own grid."""
    s6, s1225, s1224 = math.sqrt(6), math.sqrt(6.1875), math.sqrt(12.24)
    weeks = {  # week -> calendar (iso_week, month, holidays, business_days) and externals
        0: (2, 1, 0, 5, 23.0, 7.0, 70.0, 13.0, 37 / 7, 0.16),  # temps 20..26; ptax 5x5, 2x6
        1: (3, 1, 0, 5, 30.0, 2.0, None, 14.0, None, 0.16),
        2: (4, 1, 1, 4, None, None, None, None, None, None),  # national holiday on Wed 22
        3: (5, 1, 0, 5, None, None, None, None, None, None),  # Jan 27 .. Feb 2: min month 1
        4: (6, 2, 1, 4, None, None, None, None, None, None),  # Bahia holiday on Tue Feb 4
        5: (7, 2, 0, 5, None, None, None, None, None, None),
    }
    items = {
        # item: family, class, first week, quantities, request lines, sites, mean_4w, mean_13w,
        # std_13w, demand_weeks_13w, lead mean, lead p90 (2 and 10: 2 + 0.9 * 8)
        "A1": ("EPI", "smooth", 0, [6, 0, 3, 0, 9, 0], [3, 0, 1, 0, 1, 0], [2, 0, 1, 0, 1, 0],
               [None, 6, 3, 3, 2.25, 3], [None, 6, 3, 3, 2.25, 3.6],
               [None, 0, 3, s6, s1225, s1224], [0, 1, 1, 2, 2, 3], 6.0, 9.2),
        "A2": ("EPI", "lumpy", 1, [5, 0, 0, 1, 2], [1, 0, 0, 1, 1], [1, 0, 0, 1, 1],
               [None, 5, 2.5, 5 / 3, 1.5], [None, 5, 2.5, 5 / 3, 1.5],
               [None, 0, 2.5, math.sqrt(50 / 9), math.sqrt(4.25)], [0, 1, 1, 1, 2], None, None),
        "B1": ("CABOS", "intermittent", 0, [2, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0],
               [1, 0, 0, 0, 0, 0], [None, 2, 1, 2 / 3, 0.5, 0], [None, 2, 1, 2 / 3, 0.5, 0.4],
               [None, 0, 1, math.sqrt(8 / 9), math.sqrt(0.75), 0.8], [0, 1, 1, 1, 1, 1],
               3.0, 3.0),
    }  # fmt: skip
    family = {"EPI": [6, 5, 3, 0, 10, 2], "CABOS": [2, 0, 0, 0, 0, 0]}  # A1 + A2 per week
    rows = []
    for item, (fam, cls, first, qty, lines, sites, m4, m13, sd13, dw13, lt, p90) in items.items():
        for n, week in enumerate(range(first, 6)):
            iso, month, hol, bdays, temp, rain, hum, selic, ptax, ipca = weeks[week]
            rows.append(
                {
                    "item_code": item, "week_start": M[week], "item_family": fam,
                    "demand_class": cls, "quantity": qty[n], "request_lines": lines[n],
                    "sites": sites[n], "year": 2025, "iso_week": iso, "month": month,
                    "quarter": 1, "holidays": hol, "business_days": bdays,
                    "temperature_mean_c": temp, "precipitation_mm": rain,
                    "humidity_mean_pct": hum, "selic_rate_pct": selic, "ptax_usd_sell": ptax,
                    "ipca_month_pct": ipca, "lead_time_mean_days": lt, "lead_time_p90_days": p90,
                    "quantity_mean_4w": m4[n], "quantity_mean_13w": m13[n],
                    "quantity_std_13w": sd13[n], "demand_weeks_13w": dw13[n],
                    "family_quantity": family[fam][week],
                }
            )  # fmt: skip
    return rows


def test_gold_mart_features_zero_fills_and_rolls_over_past_weeks_only():
    result = GOLD["mart_features"].run(**mart_inputs())

    # the family's own past mean is checked in the next test
    assert_rows(result.drop_columns(["family_quantity_mean_13w"]), expected_mart())
    rows = {(r["item_code"], r["week_start"]): r for r in result.to_pylist()}
    # no leakage: the first week has no history; week 3's 4-week mean is weeks 1-2's
    assert rows["A1", M[0]]["quantity_mean_4w"] is None
    assert rows["A1", M[2]]["quantity_mean_4w"] == pytest.approx((6 + 0) / 2)
    # an item never requested on a date has no grid
    assert "N0" not in {item for item, _ in rows}


def test_gold_mart_features_family_mean_is_the_familys_past_weeks():
    result = GOLD["mart_features"].run(**mart_inputs())

    # EPI per week: 6, 5, 3, 0, 10, 2 -> past means None, 6, 5.5, 14/3, 3.5, 24/5
    epi = [None, 6.0, 5.5, 14 / 3, 3.5, 4.8]
    got = {(r["item_code"], r["week_start"]): r["family_quantity_mean_13w"]
           for r in result.to_pylist()}  # fmt: skip
    assert [got["A1", m] for m in M] == pytest.approx(epi)
    assert [got["A2", m] for m in M[1:]] == pytest.approx(epi[1:])


def test_gold_mart_features_week_calendar_is_its_mondays():
    inputs = mart_inputs()
    monday = date(2024, 12, 30)
    inputs["gold_fact_demand"] = table_of(
        gold_schema("fact_demand"),
        [{"demand_date": monday, "item_code": "A1", "site_code": "S1", "quantity": 1.0,
          "request_lines": 1, "requests": 1, "business_month": date(2024, 12, 1)},
         {"demand_date": date(2025, 1, 6), "item_code": "A1", "site_code": "S1",
          "quantity": 1.0, "request_lines": 1, "requests": 1,
          "business_month": date(2025, 1, 1)}],
    )  # fmt: skip
    inputs["gold_dim_item"] = table_of(
        gold_schema("dim_item"),
        [{"item_code": "A1", "item_family": "EPI", "demand_class": "smooth", "first_seen": monday}],
    )
    inputs["gold_dim_date"] = calendar(date(2024, 12, 23), date(2025, 1, 12), {})

    result = GOLD["mart_features"].run(**inputs)

    calendar_of = {r["week_start"]: (r["year"], r["iso_week"], r["month"], r["quarter"])
                   for r in result.to_pylist()}  # fmt: skip
    assert calendar_of == {monday: (2024, 1, 12, 4), date(2025, 1, 6): (2025, 2, 1, 1)}
