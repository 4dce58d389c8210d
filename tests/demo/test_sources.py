"""The generated demo sources have the raw shape of the real exports and agree with the workbook.

Shapes are checked with the standard library only, byte by byte where the format is about bytes
(encodings, byte-order mark, line endings), so nothing here trusts the ingestor's own readers.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from services.cli.main import app
from services.demo.erp_workbook import REQUISITION_HEADERS, REQUISITIONS_SHEET
from services.demo.output import replacing
from services.demo.sources import (
    IPCA_FILE,
    MOVEMENTS_FILE,
    POSITIONS_FILE,
    PTAX_FILE,
    SELIC_FILE,
    SOURCE_FILES,
    WEATHER_FILE,
    generate_demo_sources,
)
from services.ingestor.watcher import is_ignored
from tests.conftest import REAL_DATA

END = date(2025, 10, 31)
# Small enough to be quick, large enough that every quirk shows up (checked for several seeds).
SMALL = {"seed": 7, "items": 120, "depots": 30, "days": 240, "end": END}
REAL_EXTERNAL = REAL_DATA / "external"

MOVEMENT_HEADER = (
    "DATA MOVIMENTO;DEPÓSITO;PRODUTO/SERVIÇO;MATERIAL;TIPO MOVIMENTO;QUANTIDADE;U.M.;DOCUMENTO;"
    "VALOR UNITÁRIO"
)
POSITION_HEADER = "DATA POSIÇÃO;DEPÓSITO;PRODUTO/SERVIÇO;MATERIAL;SALDO;U.M.;CUSTO MÉDIO"
DMY = re.compile(r"^\d{2}/\d{2}/\d{4}$")
BR_DECIMAL = re.compile(r"^\d{1,3}(\.\d{3})*,\d+$")  # 1.234,56 and 12,00
BR_THOUSANDS = re.compile(r"^\d{1,3}(\.\d{3})+,\d+$")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return generate_demo_sources(tmp_path_factory.mktemp("sources"), **SMALL)


@pytest.fixture(scope="module")
def out(demo):
    return demo.workbook.path.parent


@pytest.fixture(scope="module")
def movements(out):
    text = (out / MOVEMENTS_FILE).read_bytes().decode("cp1252")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))


@pytest.fixture(scope="module")
def positions(out):
    text = (out / POSITIONS_FILE).read_bytes().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))


@pytest.fixture(scope="module")
def requisitions(demo):
    workbook = load_workbook(demo.workbook.path, read_only=True)
    try:
        rows = list(workbook[REQUISITIONS_SHEET].iter_rows(min_row=2, values_only=True))
    finally:
        workbook.close()
    return [dict(zip(REQUISITION_HEADERS, row, strict=True)) for row in rows]


def load_json(path):
    return json.loads(path.read_bytes().decode("utf-8"))


def br_float(text):
    return float(text.replace(".", "").replace(",", "."))


# --- everything written, once, atomically, deterministically ---------------------------------


def test_one_call_writes_the_workbook_and_the_six_sources(demo, out):
    assert [p.name for p in demo.paths] == [demo.workbook.path.name, *SOURCE_FILES]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in demo.paths)
    assert set(demo.rows) == {p.name for p in demo.paths}
    assert demo.rows[demo.workbook.path.name] == demo.workbook.requisition_rows
    assert all(count > 0 for count in demo.rows.values())


def test_same_seed_gives_the_same_bytes(demo, tmp_path):
    again = generate_demo_sources(tmp_path, **SMALL)
    assert again.rows == demo.rows
    for ours, theirs in zip(demo.paths, again.paths, strict=True):
        assert ours.read_bytes() == theirs.read_bytes(), ours.name


def test_another_seed_gives_other_stock_and_series(demo, tmp_path):
    generate_demo_sources(tmp_path, **{**SMALL, "seed": 8})
    for name in SOURCE_FILES:
        assert (tmp_path / name).read_bytes() != (demo.paths[0].parent / name).read_bytes(), name


# --- stock movements: cp1252, ';', CRLF, Brazilian numbers ------------------------------------


def test_movements_are_cp1252_not_utf8(out):
    raw = (out / MOVEMENTS_FILE).read_bytes()
    assert not raw.startswith(codecs.BOM_UTF8)
    raw.decode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the accents are single cp1252 bytes
    assert "SAÍDA".encode("cp1252") in raw


def test_movements_header_and_crlf(out, movements):
    raw = (out / MOVEMENTS_FILE).read_bytes()
    assert raw.split(b"\r\n", 1)[0].decode("cp1252") == MOVEMENT_HEADER
    assert raw.endswith(b"\r\n")
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert all(len(row) == 9 for row in movements)
    assert ";".join(movements[0]) == MOVEMENT_HEADER


def test_movement_values(movements, demo):
    rows = movements[1:]
    assert len(rows) == demo.rows[MOVEMENTS_FILE]
    assert {r[4] for r in rows} == {"ENTRADA", "SAÍDA", "AJUSTE", "TRANSFERÊNCIA"}
    assert all(DMY.match(r[0]) for r in rows)
    days = [datetime.strptime(r[0], "%d/%m/%Y").date() for r in rows]
    assert days == sorted(days)
    assert END - timedelta(days=180) < min(days) and max(days) <= END
    assert all(BR_DECIMAL.match(r[5]) and br_float(r[5]) > 0 for r in rows)
    assert any(BR_THOUSANDS.match(r[5]) for r in rows)  # four-digit quantities: 1.000,00
    values = [r[8] for r in rows]
    assert "" in values
    assert all(v == "" or BR_DECIMAL.match(v) for v in values)
    assert all(re.fullmatch(r"0\d{3}|01\d{4}", r[2]) for r in rows)  # zero-padded text codes
    assert any(any(ord(c) > 127 for c in r[3]) for r in rows)  # accented descriptions


def test_movement_codes_are_the_workbooks(movements, positions, requisitions):
    depots = {r["DEPÓSITO"] for r in requisitions}
    items = {r["PRODUTO/SERVIÇO"] for r in requisitions}
    for rows in (movements[1:], positions[1:]):
        assert {r[1] for r in rows} <= depots
        assert {r[2] for r in rows} <= items


def test_issues_follow_the_requisitions(movements, requisitions):
    requested: dict[tuple[str, str, str], list[tuple[date, float]]] = defaultdict(list)
    for r in requisitions:
        if isinstance(r["SOLICITAÇÃO"], int):
            key = (str(r["SOLICITAÇÃO"]), r["DEPÓSITO"], r["PRODUTO/SERVIÇO"])
            requested[key].append((r["DATA SOLICITADO"].date(), float(r["QUANTIDADE"])))
    issues = [r for r in movements[1:] if r[4] == "SAÍDA"]
    stocked_in_window = [
        r
        for r in requisitions
        if isinstance(r["DATA SOLICITADO"], datetime)
        and r["DATA SOLICITADO"].date() > END - timedelta(days=180)
        and r["DEPÓSITO"] != "N/A"
        and not r["FAMÍLIA"].startswith("SERVIÇOS")
    ]
    # Most requests are served from the shelf; a stockout books nothing.
    assert 0.6 * len(stocked_in_window) < len(issues) <= len(stocked_in_window)
    for row in issues:
        number = row[7].removeprefix("REQ ")
        matches = requested[(number, row[1], row[2])]
        assert matches, row
        day = datetime.strptime(row[0], "%d/%m/%Y").date()
        assert all(0 <= (day - asked).days <= 2 for asked, _ in matches)
        assert br_float(row[5]) <= sum(q for _, q in matches)  # at most what was asked for


def test_movements_have_a_unique_business_key(movements):
    keys = Counter((r[7], r[2], r[1], r[4]) for r in movements[1:])  # document, item, depot, type
    assert keys.most_common(1)[0][1] == 1


# --- stock snapshot: UTF-8 with BOM -----------------------------------------------------------


def test_positions_are_utf8_with_bom(out, positions, demo):
    raw = (out / POSITIONS_FILE).read_bytes()
    assert raw.startswith(codecs.BOM_UTF8)
    assert raw[3:].split(b"\r\n", 1)[0].decode("utf-8") == POSITION_HEADER
    assert ";".join(positions[0]) == POSITION_HEADER
    rows = positions[1:]
    assert len(rows) == demo.rows[POSITIONS_FILE]
    assert all(len(r) == 7 for r in rows)
    assert {r[0] for r in rows} == {END.strftime("%d/%m/%Y")}
    assert len({(r[1], r[2]) for r in rows}) == len(rows)
    balances = [br_float(r[4]) for r in rows]
    assert all(b >= 0 for b in balances)
    assert 0 in balances
    assert any(BR_THOUSANDS.match(r[4]) for r in rows)
    costs = [r[6] for r in rows]
    assert "" in costs
    assert all(c == "" or BR_DECIMAL.match(c) for c in costs)


# --- public series: the real files' JSON shapes -----------------------------------------------


def real_json(name):
    path = REAL_EXTERNAL / name
    if not path.exists():
        pytest.skip(f"real {name} not present at {path} (it lives outside the repo)")
    return load_json(path)


def test_json_is_utf8_two_space_indented_without_ascii_escapes(out):
    for name in (WEATHER_FILE, SELIC_FILE, PTAX_FILE, IPCA_FILE):
        raw = (out / name).read_bytes()
        assert not raw.startswith(codecs.BOM_UTF8)
        assert raw.startswith((b'{\n  "', b"[\n  {"))
        assert b"\\u" not in raw
    assert "°C".encode() in (out / WEATHER_FILE).read_bytes()
    assert "Intermediário".encode() in (out / PTAX_FILE).read_bytes()


def test_open_meteo_shape(out):
    weather = load_json(out / WEATHER_FILE)
    assert list(weather) == [
        "latitude",
        "longitude",
        "generationtime_ms",
        "utc_offset_seconds",
        "timezone",
        "timezone_abbreviation",
        "elevation",
        "hourly_units",
        "hourly",
    ]
    assert weather["timezone"] == "GMT"
    hourly = weather["hourly"]
    assert list(hourly) == list(weather["hourly_units"])
    lengths = {len(values) for values in hourly.values()}
    assert lengths == {SMALL["days"] * 24}
    start = END - timedelta(days=SMALL["days"] - 1)
    assert hourly["time"][0] == f"{start.isoformat()}T00:00"
    assert hourly["time"][-1] == f"{END.isoformat()}T23:00"
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:00", t) for t in hourly["time"])
    assert all(isinstance(h, int) for h in hourly["relative_humidity_2m"])
    assert all(20 <= t <= 33 for t in hourly["temperature_2m"])
    assert all(p >= 0 for p in hourly["precipitation"])
    rain = defaultdict(float)
    for stamp, mm in zip(hourly["time"], hourly["precipitation"], strict=True):
        rain[int(stamp[5:7])] += mm
    assert sum(rain[m] for m in (4, 5, 6)) > sum(rain[m] for m in (8, 9, 10))  # rainy season


def test_open_meteo_keys_match_the_real_file(out):
    real = real_json(WEATHER_FILE)
    ours = load_json(out / WEATHER_FILE)
    assert list(ours) == list(real)
    assert ours["hourly_units"] == real["hourly_units"]
    assert list(ours["hourly"]) == list(real["hourly"])
    for key in ours:
        assert type(ours[key]) is type(real[key]), key


def test_selic_shape(out):
    selic = load_json(out / SELIC_FILE)
    assert list(selic) == ["data"]
    rows = selic["data"]
    assert all(list(r) == ["data", "valor"] for r in rows)
    assert all(DMY.match(r["data"]) and re.fullmatch(r"\d+\.\d{2}", r["valor"]) for r in rows)
    days = [datetime.strptime(r["data"], "%d/%m/%Y").date() for r in rows]
    assert days[0] == END - timedelta(days=SMALL["days"] - 1) and days[-1] == END


def test_selic_keys_match_the_real_file(out):
    real = real_json(SELIC_FILE)
    ours = load_json(out / SELIC_FILE)
    assert list(ours) == list(real)
    assert list(ours["data"][0]) == list(real["data"][0])
    # Series 432 has a value for every calendar day, weekends included, and so do we.
    real_weekdays = {datetime.strptime(r["data"], "%d/%m/%Y").weekday() for r in real["data"]}
    ours_weekdays = {datetime.strptime(r["data"], "%d/%m/%Y").weekday() for r in ours["data"]}
    assert ours_weekdays == real_weekdays


def test_ptax_shape(out):
    ptax = load_json(out / PTAX_FILE)
    assert list(ptax) == ["@odata.context", "value"]
    assert ptax["@odata.context"].endswith("odata$metadata#_CotacaoMoedaPeriodo")
    by_day = defaultdict(list)
    for row in ptax["value"]:
        assert list(row) == [
            "paridadeCompra",
            "paridadeVenda",
            "cotacaoCompra",
            "cotacaoVenda",
            "dataHoraCotacao",
            "tipoBoletim",
        ]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}", row["dataHoraCotacao"])
        assert row["cotacaoVenda"] > row["cotacaoCompra"] > 0
        by_day[row["dataHoraCotacao"][:10]].append(row)
    assert Counter(len(rows) for rows in by_day.values()).most_common(1)[0][0] == 5
    for rows in by_day.values():
        kinds = [r["tipoBoletim"] for r in rows]
        assert kinds[0] == "Abertura" and kinds[-1] == "Fechamento"
        assert set(kinds[1:-1]) == {"Intermediário"}
        stamps = [r["dataHoraCotacao"] for r in rows]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert all(date.fromisoformat(day).weekday() < 5 for day in by_day)


def test_ptax_keys_match_the_real_file(out):
    real = real_json(PTAX_FILE)
    ours = load_json(out / PTAX_FILE)
    assert list(ours) == list(real)
    assert ours["@odata.context"] == real["@odata.context"]
    assert list(ours["value"][0]) == list(real["value"][0])
    assert {r["tipoBoletim"] for r in ours["value"]} == {r["tipoBoletim"] for r in real["value"]}


def test_sidra_shape(out, demo):
    ipca = load_json(out / IPCA_FILE)
    assert isinstance(ipca, list)
    assert ipca[0]["V"] == "Valor" and ipca[0]["D3N"] == "Mês"
    months = ipca[1:]
    assert len(months) == demo.rows[IPCA_FILE]
    assert all(list(m) == list(ipca[0]) for m in months)
    assert all(isinstance(v, str) for m in months for v in m.values())
    assert all(re.fullmatch(r"-?\d+\.\d{2}", m["V"]) for m in months)
    assert months[-1]["D3C"] == "202510" and months[-1]["D3N"] == "outubro 2025"
    assert any(m["D3N"].startswith("março") for m in months)


def test_sidra_keys_match_the_real_file(out):
    real = real_json(IPCA_FILE)
    ours = load_json(out / IPCA_FILE)
    assert ours[0] == real[0]
    assert list(ours[1]) == list(real[1])
    constant = ("NC", "NN", "MC", "MN", "D1C", "D1N", "D2C", "D2N")
    assert {k: ours[1][k] for k in constant} == {k: real[1][k] for k in constant}


# --- the command line -------------------------------------------------------------------------


def test_demo_data_command_reports_every_file(tmp_path):
    result = CliRunner().invoke(
        app,
        ["demo-data", "--out", str(tmp_path), "--items", "30", "--depots", "8", "--days", "60"],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 + len(SOURCE_FILES)
    for name in SOURCE_FILES:
        assert (tmp_path / name).exists()
        assert any(str(tmp_path / name) in line and "rows)" in line for line in lines), name


def test_files_appear_whole_under_a_name_the_watcher_ignores_until_then(tmp_path):
    target = tmp_path / MOVEMENTS_FILE
    with replacing(target) as temporary:
        temporary.write_bytes(b"half")
        assert temporary.parent == target.parent  # a rename, never a cross-device copy
        assert is_ignored(temporary)
        assert not target.exists()
    assert target.read_bytes() == b"half"
    assert list(tmp_path.iterdir()) == [target]
    with pytest.raises(RuntimeError), replacing(target) as temporary:
        temporary.write_bytes(b"broken")
        raise RuntimeError
    assert target.read_bytes() == b"half"  # a failed write leaves the old file and no litter
    assert list(tmp_path.iterdir()) == [target]
