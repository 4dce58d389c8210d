"""Fixtures of the forecaster tests: a small demo gold lake."""

from __future__ import annotations

import pytest

from tests.demo_lake import build_demo_gold


@pytest.fixture(scope="module")
def demo_var(tmp_path_factory):
    """A var dir whose lake holds gold built from small demo data (ingestor + transformer)."""
    var = tmp_path_factory.mktemp("forecast") / "var"
    build_demo_gold(var)
    return var
