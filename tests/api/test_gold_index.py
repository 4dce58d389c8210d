"""The in-memory index the API looks rows up with."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from services.api.gold import IndexedTable


def test_rows_for_each_key_are_exactly_its_rows_in_code_order():
    rng = random.Random(3)
    codes = [f"{rng.randint(0, 300):06d}" for _ in range(5000)] + [None, None, "0134", "134"]
    values = list(range(len(codes)))
    rng.shuffle(values)
    chunked = pa.Table.from_batches(
        pa.table({"item_code": codes, "n": values}).to_batches(max_chunksize=700)
    )
    index = IndexedTable.build("t", 0, chunked, "item_code")
    assert index.data["item_code"].to_pylist()[:-2] == sorted(c for c in codes if c is not None)
    assert index.data["item_code"].to_pylist()[-2:] == [None, None]
    for code in set(codes) - {None}:
        expected = sorted(v for c, v in zip(codes, values, strict=True) if c == code)
        assert sorted(index.rows_for(code)["n"].to_pylist()) == expected
    assert index.rows_for("999999").num_rows == 0
    assert index.has("0134") and index.has("134") and not index.has("34")


def test_an_empty_table_keeps_its_key_and_finds_nothing():
    index = IndexedTable.build(
        "t", 0, pa.table({"item_code": pa.array([], pa.string())}), "item_code"
    )
    assert index.rows_for("A").num_rows == 0
    assert not index.has("A")


def test_a_table_without_key_cannot_be_looked_up():
    index = IndexedTable.build("t", 0, pa.table({"x": [1]}), None)
    with pytest.raises(ValueError, match="no lookup key"):
        index.rows_for("A")
