"""The demand classes have one definition: the SQL macro and the Python function agree."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import pytest

from services.forecaster.models import classify
from shared.demand_classes import ADI_CUTOFF, CV2_CUTOFF, SQL_MACRO, demand_class

REPO_ROOT = Path(__file__).resolve().parents[2]
GRID = sorted(
    {
        *np.round(np.linspace(1.0, 3.0, 41), 6).tolist(),
        ADI_CUTOFF,
        ADI_CUTOFF - 1e-12,  # the rounding keeps a last-bit difference on the cut-off's side
        ADI_CUTOFF + 1e-6,
    }
)
CV2 = sorted({*np.round(np.linspace(0.0, 1.5, 31), 6).tolist(), CV2_CUTOFF, CV2_CUTOFF + 1e-6})


def sql_classes(pairs: list[tuple[float | None, float | None]]) -> list[str]:
    with duckdb.connect(":memory:") as con:
        con.execute(SQL_MACRO)
        con.execute("CREATE TABLE t (i INTEGER, adi DOUBLE, cv2 DOUBLE)")
        con.executemany(
            "INSERT INTO t VALUES (?, ?, ?)", [(i, a, c) for i, (a, c) in enumerate(pairs)]
        )
        return [
            row[0] for row in con.sql("SELECT demand_class(adi, cv2) FROM t ORDER BY i").fetchall()
        ]


def test_sql_macro_and_python_agree_on_a_grid_around_the_cut_offs():
    pairs = [(adi, cv2) for adi in GRID for cv2 in CV2] + [(None, None), (1.0, None)]
    python = [demand_class(adi, cv2) for adi, cv2 in pairs]
    assert sql_classes(pairs) == python
    assert set(python) == {"smooth", "erratic", "intermittent", "lumpy", "no_demand"}


@pytest.mark.parametrize(
    ("adi", "cv2", "expected"),
    [(1.0, 0.0, "smooth"), (1.0, 0.49, "erratic"), (1.32, 0.1, "intermittent"),
     (2.0, 0.8, "lumpy"), (math.inf, math.nan, "no_demand")],
)  # fmt: skip
def test_cut_offs_are_exclusive_below(adi, cv2, expected):
    assert demand_class(adi, cv2) == expected


def test_the_forecaster_classifies_a_series_with_the_shared_definition():
    series = [0.0, 3.0, 0.0, 1.0, 0.0, 0.0, 5.0, 2.0]
    adi, cv2, found = classify(series)
    assert found == demand_class(adi, cv2) == sql_classes([(adi, cv2)])[0] == "intermittent"


def test_no_other_copy_of_the_cut_offs_in_sql_or_python():
    """dim_item.sql, the forecaster and the API benchmark's generator use the macro or the
    function; a literal 1.32 or 0.49 elsewhere would be a second definition."""
    sources = [
        *(REPO_ROOT / "services").rglob("*.py"),
        *(REPO_ROOT / "services").rglob("*.sql"),
        *(REPO_ROOT / "bench").rglob("*.py"),
    ]
    copies = [
        str(path.relative_to(REPO_ROOT))
        for path in sources
        if any(cut in path.read_text(encoding="utf-8") for cut in ("1.32", "0.49"))
    ]
    assert copies == []
