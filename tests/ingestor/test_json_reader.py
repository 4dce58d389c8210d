"""JSON from the public APIs (Open-Meteo, BACEN SGS and PTAX, IBGE SIDRA): each shape lands in
its dataset with the contract's types; anything else is a violation that says why."""

import json
from datetime import date, datetime, timedelta

import pyarrow as pa
import pytest

from services.ingestor.contracts import CONTRACTS
from services.ingestor.json_reader import load_json, read_json
from services.ingestor.parsing import ContractViolation
from tests.conftest import REAL_DATA
from tests.ingestor.fakes import IngestEnv

ALL = list(CONTRACTS.values())
JSON_DATASETS = ("weather_hourly", "selic", "ptax_usd", "ipca")

OPEN_METEO = {
    "latitude": -12.970122,
    "longitude": -38.45456,
    "generationtime_ms": 180.8,
    "utc_offset_seconds": 0,
    "timezone": "GMT",
    "elevation": 39.0,
    "hourly_units": {"time": "iso8601", "temperature_2m": "°C"},
    "hourly": {
        "time": ["2021-11-12T00:00", "2021-11-12T01:00", "2021-11-12T02:00"],
        "temperature_2m": [26.1, None, 25.7],
        "relative_humidity_2m": [80, 81, 83],
        "precipitation": [0.0, 0.4, 0.0],
        "wind_speed_10m": [11.9, 11.5, 10.1],
    },
}
SGS = {
    "data": [
        {"data": "01/01/2015", "valor": "11.75"},
        {"data": "02/01/2015", "valor": "11.65"},
        {"data": "31/12/2024", "valor": "12.25"},
    ]
}
PTAX = {
    "@odata.context": "https://olinda.bcb.gov.br/olinda/servico/PTAX/versao/v1/odata$metadata",
    "value": [
        {
            "paridadeCompra": 1.0,
            "paridadeVenda": 1.0,
            "cotacaoCompra": 2.6788,
            "cotacaoVenda": 2.6794,
            "dataHoraCotacao": "2015-01-02 10:06:25.045",
            "tipoBoletim": "Abertura",
        },
        {
            "paridadeCompra": 1.0,
            "paridadeVenda": 1.0,
            "cotacaoCompra": 2.6923,
            "cotacaoVenda": 2.6929,
            "dataHoraCotacao": "2015-01-02 13:09:00.008",
            "tipoBoletim": "Fechamento",
        },
    ],
}
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


def sidra_row(month, value):
    return {
        "NC": "1",
        "NN": "Brasil",
        "MC": "2",
        "MN": "%",
        "V": value,
        "D1C": "1",
        "D1N": "Brasil",
        "D2C": "63",
        "D2N": "IPCA - Variação mensal",
        "D3C": month,
        "D3N": f"mês {month}",
    }


SIDRA = [SIDRA_LABELS, sidra_row("201501", "1.24"), sidra_row("201502", "1.22")]


def encode(document):
    return json.dumps(document, ensure_ascii=False).encode()


def read(document, contracts=ALL):
    return read_json(encode(document), contracts)


# --- the four shapes ----------------------------------------------------------------------------


def test_open_meteo_parallel_arrays_with_the_grid_cell_on_every_row():
    header, table = read(OPEN_METEO)
    assert header.contract.name == "weather_hourly"
    assert header.extras == {}
    assert table.num_rows == 3
    assert table.schema.field("observed_at").type == pa.timestamp("us")
    assert table.column("observed_at").to_pylist() == [
        datetime(2021, 11, 12, 0),
        datetime(2021, 11, 12, 1),
        datetime(2021, 11, 12, 2),
    ]
    assert table.column("temperature_c").to_pylist() == [26.1, None, 25.7]
    assert table.column("relative_humidity_pct").to_pylist() == [80.0, 81.0, 83.0]
    assert table.column("precipitation_mm").to_pylist() == [0.0, 0.4, 0.0]
    assert table.column("latitude").to_pylist() == [-12.970122] * 3
    assert table.column("longitude").to_pylist() == [-38.45456] * 3


def test_sgs_series_with_day_first_dates_and_text_values():
    header, table = read(SGS)
    assert header.contract.name == "selic"
    assert table.schema.field("rate_date").type == pa.date32()
    assert table.column("rate_date").to_pylist() == [
        date(2015, 1, 1),
        date(2015, 1, 2),
        date(2024, 12, 31),
    ]
    assert table.column("rate_pct").to_pylist() == [11.75, 11.65, 12.25]
    assert table.column("_source_row").to_pylist() == [2, 3, 4]


def test_ptax_quotes_with_milliseconds():
    header, table = read(PTAX)
    assert header.contract.name == "ptax_usd"
    assert header.extras == {}
    assert table.column("quoted_at").to_pylist() == [
        datetime(2015, 1, 2, 10, 6, 25, 45_000),
        datetime(2015, 1, 2, 13, 9, 0, 8_000),
    ]
    assert table.column("buy_rate").to_pylist() == [2.6788, 2.6923]
    assert table.column("sell_rate").to_pylist() == [2.6794, 2.6929]
    assert table.column("bulletin_type").to_pylist() == ["Abertura", "Fechamento"]
    assert table.column("buy_parity").to_pylist() == [1.0, 1.0]


def test_sidra_table_skips_its_label_row():
    header, table = read(SIDRA)
    assert header.contract.name == "ipca"
    assert header.extras == {}
    assert table.num_rows == 2  # the label row is not data
    assert table.schema.field("month").type == pa.date32()
    assert table.column("month").to_pylist() == [date(2015, 1, 1), date(2015, 2, 1)]
    assert table.column("value_pct").to_pylist() == [1.24, 1.22]
    assert table.column("variable_code").to_pylist() == ["63", "63"]
    assert table.column("variable").to_pylist() == ["IPCA - Variação mensal"] * 2
    assert table.column("_source_row").to_pylist() == [2, 3]


def test_unknown_field_is_kept_as_extra_text():
    document = {"data": [{"data": "01/01/2015", "valor": "11.75", "dataFim": "02/01/2015"}]}
    header, table = read(document)
    assert header.extra_columns == ("extra_datafim",)
    assert table.column("extra_datafim").to_pylist() == ["02/01/2015"]


# --- violations --------------------------------------------------------------------------------


def test_parallel_arrays_of_different_lengths():
    document = json.loads(json.dumps(OPEN_METEO))
    document["hourly"]["precipitation"].append(1.0)
    with pytest.raises(ContractViolation) as caught:
        read(document)
    assert "different lengths [3, 4]" in caught.value.reason


@pytest.mark.parametrize(
    ("content", "reason_part"),
    [
        (b'{"data": [{"data": "01/01/2015", "valor": "11.75"}', "not valid JSON"),
        (b"", "not valid JSON"),
        ('{"data": "Março"}'.encode("cp1252"), "not UTF-8"),
    ],
)
def test_invalid_json(content, reason_part):
    with pytest.raises(ContractViolation) as caught:
        load_json(content)
    assert reason_part in caught.value.reason


def test_json_with_a_bom_is_read():
    assert load_json(b"\xef\xbb\xbf" + encode(SGS)) == SGS


@pytest.mark.parametrize(
    ("document", "column", "row"),
    [
        (
            {"data": [{"data": "01/01/2015", "valor": "11.75"}, {"data": "x", "valor": "1"}]},
            "rate_date",
            3,
        ),
        ({"data": [{"data": "01/01/2015", "valor": "onze"}]}, "rate_pct", 2),
        ({"data": [{"data": "31/02/2015", "valor": "11.75"}]}, "rate_date", 2),
        ([SIDRA_LABELS, sidra_row("201501", "1.24"), sidra_row("201513", "1")], "month", 3),
        ({**OPEN_METEO, "latitude": None}, "latitude", 2),
    ],
    ids=["bad-date", "bad-number", "31-feb", "month-13", "no-latitude"],
)
def test_bad_value_names_column_and_record(document, column, row):
    with pytest.raises(ContractViolation) as caught:
        read(document)
    assert (caught.value.column, caught.value.row) == (column, row)


@pytest.mark.parametrize(
    "document",
    [
        {"value": [{"cotacaoCompra": 1.0, "dataHoraCotacao": "2015-01-02 10:00:00.000"}]},
        {"hourly": {"time": ["2021-11-12T00:00"]}},  # the grid cell is missing
        {"resultado": []},
        [1, 2, 3],
        "texto",
    ],
    ids=[
        "ptax-without-rates",
        "meteo-without-position",
        "unknown-key",
        "list-of-numbers",
        "string",
    ],
)
def test_json_that_fits_no_contract(document):
    with pytest.raises(ContractViolation) as caught:
        read(document)
    for name in JSON_DATASETS:
        assert name in caught.value.reason


# --- through the service -----------------------------------------------------------------------


@pytest.fixture
def env(tmp_path):
    return IngestEnv(tmp_path)


@pytest.mark.parametrize(
    ("document", "dataset", "rows"),
    [
        (OPEN_METEO, "weather_hourly", 3),
        (SGS, "selic", 3),
        (PTAX, "ptax_usd", 2),
        (SIDRA, "ipca", 2),
    ],
)
def test_each_shape_is_ingested_into_its_dataset(env, document, dataset, rows):
    outcome = env.ingest("api.json", encode(document))
    assert outcome.status == "ingested"
    (event,) = outcome.events
    assert (event.dataset, event.row_count, event.extra_columns) == (dataset, rows, [])
    table = env.lake.read_parquet(event.bronze_path)
    assert table.num_rows == rows
    assert table.column("_source_file").to_pylist() == ["api.json"] * rows


def test_json_that_fits_no_contract_is_quarantined_naming_the_candidates(env):
    outcome = env.ingest("cotacoes.json", encode({"value": [{"moeda": "USD", "taxa": 5.1}]}))
    assert outcome.status == "quarantined"
    report = env.report(outcome)
    assert report["dataset"] == "unknown"
    for name in JSON_DATASETS:
        assert name in report["reason"]
    assert env.lake_files() == []


def test_json_in_a_folder_of_a_dataset_that_takes_no_json(env):
    outcome = env.ingest("erp_requisitions/ptax.json", encode(PTAX))
    assert outcome.status == "quarantined"
    report = env.report(outcome)
    assert "does not accept json" in report["reason"]
    assert report["dataset"] == "erp_requisitions"
    assert env.lake_files() == []


def test_json_in_its_dataset_folder_is_checked_against_that_contract_only(env):
    outcome = env.ingest("selic/ptax.json", encode(PTAX))
    assert outcome.status == "quarantined"
    report = env.report(outcome)
    assert report["dataset"] == "selic"
    assert "selic" in report["reason"]
    assert "ptax_usd" not in report["reason"]


def test_invalid_json_is_quarantined(env):
    outcome = env.ingest("selic.json", b'{"data": [')
    assert outcome.status == "quarantined"
    assert "not valid JSON" in env.report(outcome)["reason"]


# --- the real files ------------------------------------------------------------------------------

EXTERNAL = REAL_DATA / "external"
REAL_FILES = [
    # file, dataset, rows stated for the data set, how to count its records independently
    ("openmeteo_salvador_ba.json", "weather_hourly", 35_064, lambda d: len(d["hourly"]["time"])),
    ("bacen_selic.json", "selic", 3_968, lambda d: len(d["data"])),
    ("bacen_ptax_usd.json", "ptax_usd", 13_573, lambda d: len(d["value"])),
    ("ibge_ipca.json", "ipca", 130, lambda d: len(d) - 1),  # minus the label row
]


@pytest.mark.parametrize(
    ("name", "dataset", "rows", "count"), REAL_FILES, ids=[f[1] for f in REAL_FILES]
)
def test_real_external_file(env, name, dataset, rows, count):
    path = EXTERNAL / name
    if not path.exists():
        pytest.skip(f"real data file not present at {path} (it lives outside the repository)")
    content = path.read_bytes()
    assert count(json.loads(content)) == rows

    outcome = env.ingest(name, content)

    assert outcome.status == "ingested"
    (event,) = outcome.events
    assert (event.dataset, event.row_count, event.extra_columns) == (dataset, rows, [])
    table = env.lake.read_parquet(event.bronze_path)
    assert table.num_rows == rows
    contract = CONTRACTS[dataset]
    for column in contract.columns:
        if not column.nullable:
            assert table.column(column.name).null_count == 0, column.name
    date_column = table.column(contract.business_date).to_pylist()
    assert date_column == sorted(date_column)
    if dataset == "weather_hourly":  # one row per hour, none missing
        assert date_column[-1] - date_column[0] == timedelta(hours=rows - 1)
    if dataset == "ipca":  # one row per month from January 2015
        assert date_column[0] == date(2015, 1, 1)
        assert len(set(date_column)) == rows
