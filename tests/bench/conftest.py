"""Running a benchmark as its users do: `python -m bench.<name> ...` from the repository root."""

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
RunBench = Callable[..., subprocess.CompletedProcess[str]]
QuickRun = Callable[[str], tuple[subprocess.CompletedProcess[str], dict[str, Any]]]


@pytest.fixture
def run_bench() -> RunBench:
    def run(name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", f"bench.{name}", *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture
def quick_run(run_bench: RunBench, tmp_path: Path) -> QuickRun:
    """`--quick` with data and results under tmp_path; it must succeed. Returns the finished
    process and the JSON results."""

    def run(name: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        out = tmp_path / f"{name}.json"
        completed = run_bench(
            name, "--quick", "--data-dir", str(tmp_path / "data"), "--out", str(out)
        )
        assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
        return completed, json.loads(out.read_text())

    return run
