"""Dataset contracts: forgiving header matching."""

import pytest

from services.ingestor.contracts import (
    CONTRACTS,
    ERP_REQUISITIONS,
    Column,
    DatasetContract,
    JsonLayout,
    normalise_header,
    snake_case,
)

REAL_HEADER = [
    "DEPÓSITO",
    "PRODUTO/SERVIÇO",
    "MATERIAL",
    "FAMÍLIA",
    "NOME FORNEC.",
    "QUANTIDADE",
    "U.M.",
    "DATA REQUISITADA",
    "SOLICITAÇÃO",
    "DATA SOLICITADO",
    "DATA DE COMPRA",
]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Família", "FAMILIA"),
        (" Família ", "FAMILIA"),
        ("FAMILIA", "FAMILIA"),
        ("família", "FAMILIA"),
        ("SOLICITAÇÃO", "SOLICITACAO"),
        ("Depósito", "DEPOSITO"),
        ("PRODUTO/SERVIÇO", "PRODUTO SERVICO"),
        ("produto  /  serviço", "PRODUTO SERVICO"),
        ("NOME FORNEC.", "NOME FORNEC"),
        ("Nome   Fornec", "NOME FORNEC"),
        ("U.M.", "U M"),
        ("u m", "U M"),
        ("DATA\nSOLICITADO", "DATA SOLICITADO"),
        ("\tQuantidade\u00a0", "QUANTIDADE"),
        ("ID SITE", "ID SITE"),
        (None, ""),
        ("", ""),
        ("---", ""),
        (12, "12"),
    ],
)
def test_normalise_header(raw, expected):
    assert normalise_header(raw) == expected


def test_real_header_matches_every_column_in_place():
    positions = ERP_REQUISITIONS.match_header(list(REAL_HEADER))
    assert positions == {
        "depot_code": 0,
        "item_code": 1,
        "item_description": 2,
        "item_family": 3,
        "supplier_name": 4,
        "quantity": 5,
        "unit": 6,
        "required_date": 7,
        "request_number": 8,
        "requested_date": 9,
        "purchased_date": 10,
    }


def test_columns_are_found_in_any_order_and_any_spelling():
    header = [None, "qtd", "  familia ", "Descrição", "Produto", "Deposito", "extra column"]
    positions = ERP_REQUISITIONS.match_header(header)
    assert positions == {
        "quantity": 1,
        "item_family": 2,
        "item_description": 3,
        "item_code": 4,
        "depot_code": 5,
    }


def test_optional_columns_may_be_missing():
    header = ["PRODUTO/SERVIÇO", "MATERIAL", "FAMÍLIA", "QUANTIDADE", "DEPÓSITO"]
    positions = ERP_REQUISITIONS.match_header(header)
    assert positions is not None
    assert "supplier_name" not in positions
    assert "requested_date" not in positions


@pytest.mark.parametrize(
    "missing", [c for c in ERP_REQUISITIONS.columns if c.required], ids=lambda c: c.name
)
def test_missing_required_column_gives_none(missing):
    aliases = missing.normalised_aliases
    header = [h for h in REAL_HEADER if normalise_header(h) not in aliases]
    assert len(header) == len(REAL_HEADER) - 1
    assert ERP_REQUISITIONS.match_header(header) is None


def test_empty_or_unrelated_rows_do_not_match():
    assert ERP_REQUISITIONS.match_header([]) is None
    assert ERP_REQUISITIONS.match_header([None, None, None]) is None
    assert ERP_REQUISITIONS.match_header(["DESCRIÇÃO CTA.FINANC.", "Soma de VLR.LÍQUIDO"]) is None
    assert ERP_REQUISITIONS.match_header(["SITE ", "ID SITE", "CLIENTE "]) is None


def test_required_columns_of_the_erp_contract():
    required = {c.name for c in ERP_REQUISITIONS.required}
    assert required == {"depot_code", "item_code", "item_description", "item_family", "quantity"}
    assert CONTRACTS["erp_requisitions"] is ERP_REQUISITIONS
    assert set(ERP_REQUISITIONS.business_key) <= {c.name for c in ERP_REQUISITIONS.columns}
    assert ERP_REQUISITIONS.business_date in {c.name for c in ERP_REQUISITIONS.columns}


def test_a_small_custom_contract():
    contract = DatasetContract(
        name="stock",
        description="test",
        formats=("csv",),
        columns=(
            Column("code", "string", ("CÓDIGO",)),
            Column("on_hand", "float", ("SALDO",), required=False),
        ),
        business_key=("code",),
        business_date=None,
    )
    assert contract.match_header(["saldo", "codigo"]) == {"code": 1, "on_hand": 0}
    assert contract.match_header(["saldo"]) is None
    assert contract.match_header(["codigo"]) == {"code": 0}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("VALOR UNITÁRIO", "valor_unitario"),
        (" Observação ", "observacao"),
        ("Nº  Pedido/Item", "no_pedido_item"),
        ("---", "unnamed"),
        (None, "unnamed"),
    ],
)
def test_snake_case_names_unknown_columns(raw, expected):
    assert snake_case(raw) == expected


def test_contract_refuses_business_key_or_date_outside_its_columns():
    code = Column("code", "string", ())
    with pytest.raises(ValueError, match="unknown columns"):
        DatasetContract("x", "", ("csv",), (code,), business_key=("sku",), business_date=None)
    with pytest.raises(ValueError, match="unknown columns"):
        DatasetContract("x", "", ("csv",), (code,), business_key=("code",), business_date="day")


def test_json_layout_goes_with_the_json_format_and_only_with_it():
    code = Column("code", "string", ())
    with pytest.raises(ValueError, match="json_layout"):
        DatasetContract("x", "", ("json",), (code,), ("code",), None)
    with pytest.raises(ValueError, match="json_layout"):
        DatasetContract(
            "x", "", ("csv",), (code,), ("code",), None, json_layout=JsonLayout(records_at="d")
        )
    ok = DatasetContract(
        "x", "", ("json",), (code,), ("code",), None, json_layout=JsonLayout(records_at="d")
    )
    assert ok.json_layout is not None


def test_every_contract_is_registered_under_its_name_and_is_consistent():
    assert len(CONTRACTS) == 9
    for name, contract in CONTRACTS.items():
        assert contract.name == name
        assert contract.formats, name
        assert contract.required, name
        column_names = [c.name for c in contract.columns]
        assert len(column_names) == len(set(column_names)), name
        # every column can be found in a header by at least one non-empty spelling
        for column in contract.columns:
            assert column.normalised_aliases - {""}, (name, column.name)
    erp = {n for n, c in CONTRACTS.items() if "xlsx" in c.formats}
    assert erp == {
        "erp_requisitions",
        "erp_cost_summary",
        "erp_sites",
        "stock_movements",
        "stock_on_hand",
    }
    assert {n for n, c in CONTRACTS.items() if "json" in c.formats} == {
        "weather_hourly",
        "selic",
        "ptax_usd",
        "ipca",
    }
