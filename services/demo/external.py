"""Public series the planners join to demand, generated in the exact shape each API returns.

Weather from Open-Meteo's hourly archive, the SELIC rate from BACEN's SGS, the USD PTAX
bulletins from BACEN's OData service and the monthly IPCA from IBGE's SIDRA. Keys, key order,
value types and text formats copy the real responses, so a reader written against the demo
files reads the real ones too. The numbers are invented but plausible for Salvador, BA.
"""

from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta
from typing import Any

# Open-Meteo snaps the request to its grid cell; these are the cell it answers for Salvador.
SALVADOR_LATITUDE = -12.970122
SALVADOR_LONGITUDE = -38.45456
SALVADOR_ELEVATION = 39.0

# Monthly normals for Salvador, January first: mean air temperature (°C), chance a day has
# rain, mean mm in a wet hour. The rainy season runs April to July.
MEAN_TEMPERATURE = (26.7, 26.8, 26.8, 26.4, 25.5, 24.6, 24.0, 24.0, 24.5, 25.4, 26.0, 26.5)
RAINY_DAY_CHANCE = (0.50, 0.50, 0.55, 0.72, 0.75, 0.72, 0.68, 0.60, 0.50, 0.48, 0.55, 0.48)
WET_HOUR_MM = (0.85, 0.75, 0.8, 1.05, 1.0, 0.72, 0.6, 0.58, 0.5, 0.65, 1.0, 0.76)
LOCAL_UTC_OFFSET_HOURS = -3  # the archive is in GMT; the sun follows Salvador's clock

PTAX_CONTEXT = (
    "https://was-p.bcnet.bcb.gov.br/olinda/servico/PTAX/versao/v1/odata$metadata"
    "#_CotacaoMoedaPeriodo"
)
PTAX_OPENING = "Abertura"
PTAX_INTERMEDIATE = "Intermediário"
PTAX_CLOSING = "Fechamento"

SIDRA_LABELS = {
    "NC": "Nível Territorial (Código)",
    "NN": "Nível Territorial",
    "MC": "Unidade de Medida (Código)",
    "MN": "Unidade de Medida",
    "V": "Valor",
    "D1C": "Brasil (Código)",
    "D1N": "Brasil",
    "D2C": "Variável (Código)",
    "D2N": "Variável",
    "D3C": "Mês (Código)",
    "D3N": "Mês",
}
MONTHS_PT = (
    "janeiro",
    "fevereiro",
    "março",
    "abril",
    "maio",
    "junho",
    "julho",
    "agosto",
    "setembro",
    "outubro",
    "novembro",
    "dezembro",
)
# IPCA is higher in the first quarter (school fees, fuel) and dips mid-year (food harvest).
IPCA_SEASONAL = (0.15, 0.25, 0.1, 0.05, 0.0, -0.1, -0.05, -0.12, 0.0, 0.05, 0.05, 0.15)


def days_of(end: date, days: int) -> list[date]:
    start = end - timedelta(days=days - 1)
    return [start + timedelta(days=offset) for offset in range(days)]


def open_meteo(rng: random.Random, end: date, days: int) -> dict[str, Any]:
    times: list[str] = []
    temperature: list[float] = []
    humidity: list[int] = []
    precipitation: list[float] = []
    wind: list[float] = []
    wet = False
    for day in days_of(end, days):
        month = day.month - 1
        rainy = rng.random() < RAINY_DAY_CHANCE[month]
        day_anomaly = rng.gauss(0.0, 0.7)
        wind_anomaly = rng.gauss(0.0, 3.0)
        # Cloud cover on rainy days flattens the daily cycle.
        amplitude = 1.6 if rainy else 2.4
        for hour in range(24):
            local = (hour + LOCAL_UTC_OFFSET_HOURS) % 24
            cycle = math.cos(2 * math.pi * (local - 14) / 24)  # warmest at 14h local
            # Showers cluster: a wet hour is likely followed by another.
            wet = rainy and rng.random() < (0.65 if wet else 0.2)
            rain = round(min(30.0, rng.expovariate(1 / WET_HOUR_MM[month])), 1) if wet else 0.0
            temp = MEAN_TEMPERATURE[month] + amplitude * cycle + day_anomaly + rng.gauss(0, 0.3)
            temp -= 1.2 if rain else 0.0
            temp = min(32.0, max(20.5, temp))
            relative = 79 - 3.5 * (temp - MEAN_TEMPERATURE[month]) + (8 if rain else 0)
            relative += rng.gauss(0, 3)
            speed = 13.5 + 3.5 * cycle + wind_anomaly + rng.gauss(0, 1.5)
            times.append(f"{day:%Y-%m-%d}T{hour:02d}:00")
            temperature.append(round(temp, 1))
            humidity.append(int(min(98, max(45, round(relative)))))
            precipitation.append(rain)
            wind.append(round(min(38.0, max(0.0, speed)), 1))
    return {
        "latitude": SALVADOR_LATITUDE,
        "longitude": SALVADOR_LONGITUDE,
        "generationtime_ms": rng.uniform(20.0, 250.0),
        "utc_offset_seconds": 0,
        "timezone": "GMT",
        "timezone_abbreviation": "GMT",
        "elevation": SALVADOR_ELEVATION,
        "hourly_units": {
            "time": "iso8601",
            "temperature_2m": "°C",
            "relative_humidity_2m": "%",
            "precipitation": "mm",
            "wind_speed_10m": "km/h",
        },
        "hourly": {
            "time": times,
            "temperature_2m": temperature,
            "relative_humidity_2m": humidity,
            "precipitation": precipitation,
            "wind_speed_10m": wind,
        },
    }


def bacen_selic(rng: random.Random, end: date, days: int) -> dict[str, Any]:
    """The SELIC target (SGS series 432): one row for every calendar day, as the real file has.

    The rate moves only after a Copom meeting, eight a year, by quarter-point steps, and
    decisions tend to keep the direction of the previous one.
    """
    rate = rng.choice((10.5, 10.75, 11.25, 11.75, 12.25, 13.25, 13.75))
    direction = rng.choice((-1, 0, 1))
    next_meeting = rng.randint(1, 45)
    rows: list[dict[str, str]] = []
    for index, day in enumerate(days_of(end, days)):
        if index == next_meeting:
            if rng.random() < 0.25:
                direction = rng.choice((-1, 0, 1))
            step = rng.choice((0.25, 0.5, 0.5, 0.75, 1.0)) if direction else 0.0
            rate = min(15.0, max(4.5, rate + direction * step))
            next_meeting += rng.randint(42, 49)
        rows.append({"data": f"{day:%d/%m/%Y}", "valor": f"{rate:.2f}"})
    return {"data": rows}


def bacen_ptax(rng: random.Random, end: date, days: int) -> dict[str, Any]:
    """USD PTAX bulletins: four consultation windows a business day, then the closing rate.

    The closing rate is the mean of the four windows, as BACEN computes it. Half-day sessions
    (24 and 31 December) have one intermediate window only.
    """
    rate = rng.uniform(4.9, 5.7)
    spread = 0.0006
    bulletins: list[dict[str, Any]] = []
    for day in days_of(end, days):
        if day.weekday() >= 5 or day in brazilian_holidays(day.year):
            continue
        rate *= math.exp(rng.gauss(0.0001, 0.0085))
        half_day = (day.month, day.day) in ((12, 24), (12, 31))
        intermediate_hours = (11,) if half_day else (11, 12, 13)
        windows = [(PTAX_OPENING, 10), *((PTAX_INTERMEDIATE, h) for h in intermediate_hours)]
        buys: list[float] = []
        sells: list[float] = []
        stamp = datetime(day.year, day.month, day.day)
        for kind, hour in windows:
            buy = round(rate * math.exp(rng.gauss(0.0, 0.0025)), 4)
            sell = round(buy + spread, 4)
            buys.append(buy)
            sells.append(sell)
            stamp = datetime(day.year, day.month, day.day, hour) + timedelta(
                seconds=rng.uniform(0, 1200)
            )
            bulletins.append(_ptax_row(buy, sell, stamp, kind))
        closing = stamp + timedelta(milliseconds=rng.randint(5, 60))
        buy = round(sum(buys) / len(buys), 4)
        sell = round(sum(sells) / len(sells), 4)
        bulletins.append(_ptax_row(buy, sell, closing, PTAX_CLOSING))
    return {"@odata.context": PTAX_CONTEXT, "value": bulletins}


def _ptax_row(buy: float, sell: float, stamp: datetime, kind: str) -> dict[str, Any]:
    return {
        "paridadeCompra": 1.0,
        "paridadeVenda": 1.0,
        "cotacaoCompra": buy,
        "cotacaoVenda": sell,
        "dataHoraCotacao": f"{stamp:%Y-%m-%d %H:%M:%S}.{stamp.microsecond // 1000:03d}",
        "tipoBoletim": kind,
    }


def ibge_ipca(rng: random.Random, end: date, days: int) -> list[dict[str, str]]:
    """SIDRA table 1737, variable 63 (monthly IPCA, %): a label row, then one row per month."""
    start = end - timedelta(days=days - 1)
    rows: list[dict[str, str]] = [dict(SIDRA_LABELS)]
    year, month = start.year, start.month
    shock = 0.0
    while (year, month) <= (end.year, end.month):
        shock = 0.6 * shock + rng.gauss(0.0, 0.12)
        value = round(0.36 + IPCA_SEASONAL[month - 1] + shock, 2) + 0.0  # no "-0.00"
        rows.append(
            {
                "NC": "1",
                "NN": "Brasil",
                "MC": "2",
                "MN": "%",
                "V": f"{value:.2f}",
                "D1C": "1",
                "D1N": "Brasil",
                "D2C": "63",
                "D2N": "IPCA - Variação mensal",
                "D3C": f"{year}{month:02d}",
                "D3N": f"{MONTHS_PT[month - 1]} {year}",
            }
        )
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return rows


def brazilian_holidays(year: int) -> frozenset[date]:
    """National bank holidays: no PTAX bulletin on these days."""
    easter = _easter(year)
    fixed = [(1, 1), (4, 21), (5, 1), (9, 7), (10, 12), (11, 2), (11, 15), (12, 25)]
    if year >= 2024:
        fixed.append((11, 20))  # Consciência Negra became national in 2024
    # Carnival Monday and Tuesday, Good Friday, Corpus Christi.
    moving = [easter + timedelta(days=d) for d in (-48, -47, -2, 60)]
    return frozenset([date(year, m, d) for m, d in fixed] + moving)


def _easter(year: int) -> date:
    # Anonymous Gregorian algorithm (Meeus/Jones/Butcher).
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)
