"""The README's dataset reference is exactly what the contracts say."""

from __future__ import annotations

from services.cli.operations import contracts_markdown
from tests.conftest import REPO_ROOT


def test_readme_dataset_reference_matches_the_contracts():
    readme = (REPO_ROOT / "README.md").read_text()
    start = readme.index("<!-- datasets:start")
    start = readme.index("\n", start) + 1
    end = readme.index("<!-- datasets:end -->")
    assert readme[start:end] == contracts_markdown(), (
        "README dataset reference is stale: regenerate it with `nova datasets --markdown`"
    )
