"""The items endpoint over a real local lake."""

from datetime import date

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.transformer.transforms import GOLD
from shared.settings import ApiSettings, StorageSettings
from shared.storage import Lake
from tests.api.conftest import record_build

ITEMS = [
    ("000123", "LUVA VAQUETA TAM 40", "EPI", "PAR", date(2024, 1, 5), date(2025, 2, 1), 7, 21.0),
    (
        "0134",
        "FRETE SALVADOR",
        "SERVIÇOS TOMADOS",
        "SR",
        date(2024, 3, 1),
        date(2024, 3, 1),
        1,
        1.0,
    ),
    (
        "010825",
        "CABO FLEXIVEL 2,5MM",
        "MATERIAL ELETRICO",
        "MT",
        date(2023, 11, 2),
        date(2025, 10, 30),
        40,
        1234.5,
    ),
    ("010826", "CABO FLEXIVEL 6MM", "MATERIAL ELETRICO", "MT", None, None, 2, 30.0),
    ("012000", "CAPACETE CLASSE B", "EPI", None, date(2025, 1, 1), date(2025, 1, 9), 3, 3.0),
]
GOLD_DIM_ITEM = GOLD["dim_item"]
# The columns these fixtures spell out; the demand-class columns are left empty.
FIELDS = [f.name for f in GOLD_DIM_ITEM.schema][:8]


def gold_table(rows):
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in FIELDS]
    given = dict(zip(FIELDS, columns, strict=True))
    return pa.table(
        {
            f.name: pa.array(given.get(f.name, [None] * len(rows)), f.type)
            for f in GOLD_DIM_ITEM.schema
        }
    )


@pytest.fixture
def lake(tmp_path):
    return Lake.from_settings(StorageSettings(local_root=tmp_path / "lake"))


@pytest.fixture
def client(lake):
    # The refresher thread never fires on its own here: tests publish, then refresh.
    app = create_app(ApiSettings(version_check_seconds=3600, max_page_size=3), lake)
    with TestClient(app) as test_client:
        yield test_client


def publish_gold(lake, rows, client=None):
    """Commit dim_item and, given a client, let its API see the new version (what the
    refresher thread does on an event or on its period)."""
    commit = lake.write_delta("gold", "dim_item", gold_table(rows), mode="overwrite")
    build_id = f"{commit.version + 1:032x}"
    record_build(lake, build_id, {"dim_item": commit.version}, {"build_id": build_id})
    if client is not None:
        assert client.app.state.gold.refresh()
    return commit


def items(client, **params):
    response = client.get("/api/v1/items", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_health(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_empty_lake_gives_an_empty_page(client):
    body = items(client, limit=3)
    assert body == {"items": [], "total": 0, "limit": 3, "offset": 0, "version": None}
    assert items(client, limit=2, offset=5)["total"] == 0


def test_items_are_served_with_every_field(client, lake):
    publish_gold(lake, ITEMS, client)
    body = items(client, limit=3)
    assert body["total"] == 5
    assert body["version"] == 0
    assert body["limit"] == 3
    assert body["offset"] == 0
    # Ordered by code as text, whatever order gold stores rows in.
    assert [i["item_code"] for i in body["items"]] == ["000123", "010825", "010826"]
    assert body["items"][0] == {
        "item_code": "000123",
        "item_description": "LUVA VAQUETA TAM 40",
        "item_family": "EPI",
        "unit": "PAR",
        "first_seen": "2024-01-05",
        "last_seen": "2025-02-01",
        "request_lines": 7,
        "total_quantity": 21.0,
        "adi": None,
        "cv2": None,
        "demand_class": None,
    }


def test_null_unit_and_dates_are_served_as_null(client, lake):
    publish_gold(lake, ITEMS, client)
    pages = [items(client, limit=3, offset=offset)["items"] for offset in (0, 3)]
    by_code = {i["item_code"]: i for page in pages for i in page}
    assert by_code["010826"]["first_seen"] is None
    assert by_code["010826"]["last_seen"] is None
    assert by_code["012000"]["unit"] is None


def test_pagination(client, lake):
    publish_gold(lake, ITEMS, client)
    pages = [items(client, limit=2, offset=offset) for offset in (0, 2, 4, 6)]
    assert [[i["item_code"] for i in p["items"]] for p in pages] == [
        ["000123", "010825"],
        ["010826", "012000"],
        ["0134"],  # codes sort as text, as the ERP writes them
        [],
    ]
    assert all(p["total"] == 5 for p in pages)
    assert [(p["limit"], p["offset"]) for p in pages] == [(2, 0), (2, 2), (2, 4), (2, 6)]


def test_default_limit_is_50(lake):
    publish_gold(lake, ITEMS)
    app = create_app(ApiSettings(), lake)
    with TestClient(app) as client:
        body = items(client)
    assert body["limit"] == 50
    assert len(body["items"]) == 5


def test_request_without_limit_never_exceeds_max_page_size(client, lake):
    publish_gold(lake, ITEMS, client)  # 5 items, the client's max_page_size is 3
    body = items(client)
    assert body["total"] == 5
    assert body["limit"] <= 3
    assert len(body["items"]) <= 3


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 4},
        {"limit": 0},
        {"limit": -1},
        {"offset": -1},
        {"limit": "many"},
        {"q": "x" * 101},
    ],
)
def test_invalid_query_parameters_are_422(client, lake, params):
    publish_gold(lake, ITEMS, client)
    response = client.get("/api/v1/items", params=params)
    assert response.status_code == 422


def test_family_filter_is_exact_and_case_insensitive(client, lake):
    publish_gold(lake, ITEMS, client)
    body = items(client, family="epi")
    assert [i["item_code"] for i in body["items"]] == ["000123", "012000"]
    assert body["total"] == 2
    body = items(client, family="Serviços Tomados")
    assert [i["item_code"] for i in body["items"]] == ["0134"]
    assert items(client, family="MATERIAL")["total"] == 0  # not a prefix match


def test_q_searches_code_and_description(client, lake):
    publish_gold(lake, ITEMS, client)
    assert [i["item_code"] for i in items(client, q="0108")["items"]] == ["010825", "010826"]
    assert [i["item_code"] for i in items(client, q="cabo")["items"]] == ["010825", "010826"]
    assert [i["item_code"] for i in items(client, q="2,5mm")["items"]] == ["010825"]
    assert items(client, q="nothing like this")["total"] == 0
    body = items(client, q="CABO", family="material eletrico", limit=1, offset=1)
    assert body["total"] == 2
    assert [i["item_code"] for i in body["items"]] == ["010826"]


def test_q_is_literal_text_not_a_pattern(client, lake):
    publish_gold(lake, ITEMS, client)
    assert items(client, q=".*")["total"] == 0
    assert items(client, q="(")["total"] == 0


def test_a_new_gold_version_is_picked_up(client, lake):
    publish_gold(lake, ITEMS[:2], client)
    first = items(client)
    assert (first["version"], first["total"]) == (0, 2)
    publish_gold(lake, ITEMS, client)
    second = items(client)
    assert (second["version"], second["total"]) == (1, 5)
    publish_gold(lake, ITEMS[2:3], client)
    third = items(client)
    assert (third["version"], third["total"]) == (2, 1)
    assert third["items"][0]["item_code"] == "010825"


def test_first_gold_version_appears_after_an_empty_start(client, lake):
    assert items(client)["version"] is None
    publish_gold(lake, ITEMS, client)
    assert items(client)["version"] == 0


def test_version_check_interval_keeps_serving_the_loaded_snapshot(lake):
    publish_gold(lake, ITEMS[:2])
    app = create_app(ApiSettings(version_check_seconds=3600), lake)
    with TestClient(app) as client:
        assert items(client)["total"] == 2
        publish_gold(lake, ITEMS)
        body = items(client)  # no event, within the interval: the loaded view is served
    assert (body["version"], body["total"]) == (0, 2)
