"""What the benchmarks share: the command-line options every one has, machine and version
information, the JSON results file, and child processes (the runners, the data generators);
what runs inside a measured child is in `bench.child`.

Standard library only: a child's `ru_maxrss` starts from the RSS of the process that spawned
it, so the parent process never imports pyarrow, NumPy or a table.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

REPO_ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
MANIFEST = "manifest.json"  # written last into a generated lake: without it, it is incomplete


def say(text: str) -> None:
    print(text, flush=True)


# --- command line and results -----------------------------------------------------------------


def add_output_options(
    parser: argparse.ArgumentParser, name: str, data_dir_help: str | None = None
) -> None:
    """`--out` (var/bench/NAME.json) and, given its help, `--data-dir` (var/bench)."""
    parser.add_argument(
        "--out", type=Path, default=Path(f"var/bench/{name}.json"), help="JSON results file"
    )
    if data_dir_help is not None:
        parser.add_argument(
            "--data-dir", type=Path, default=REPO_ROOT / "var" / "bench", help=data_dir_help
        )


def fill_sizes(args: argparse.Namespace, sizes: dict[str, Any]) -> None:
    """Sizes not given on the command line (the `--quick` ones or the defaults)."""
    for name, value in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def version(package: str) -> str | None:
    import importlib.metadata  # not in the measured children: they never need it

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine(packages: Iterable[str]) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {p: version(p) for p in packages},
        "load_average_at_start": load_average(),
    }


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_results(out: Path, results: dict[str, Any]) -> int:
    """Writes the JSON results; returns the exit status: 1 if something broke (`errors`). A
    missed target is a finding, not a failure."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    say(f"\nresults: {out}")
    return 1 if results["errors"] else 0


# --- child processes --------------------------------------------------------------------------


def run_module(module: str, *args: object, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """`python -m MODULE ARGS...` from the repository root."""
    command = [sys.executable, "-m", module, *map(str, args)]
    return subprocess.run(command, cwd=REPO_ROOT, **kwargs)


def last_json_line(completed: subprocess.CompletedProcess[str], what: str) -> dict[str, Any]:
    """The JSON object a child printed last; RuntimeError if the child failed."""
    if completed.returncode != 0:
        raise RuntimeError(f"{what} failed: {completed.stderr[-3000:]}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def generated_lake(what: str, module: str, *args: object) -> dict[str, Any]:
    """The manifest of a generated (or cached) lake, made in a child (the parent stays small)."""
    completed = run_module(module, *args, check=False, capture_output=True, text=True)
    return last_json_line(completed, what)


def cached_lake(
    root: Path, prefix: str, write: Callable[[Path], dict[str, Any]]
) -> tuple[Path, dict[str, Any], bool]:
    """The lake at `root` (written by `write` into a staging folder unless cached): folder,
    manifest, and whether it was generated now. The staging folder is renamed only when
    complete, so an interrupted run never leaves a lake a later run would trust."""
    manifest_path = root / MANIFEST
    if manifest_path.exists():
        return root, json.loads(manifest_path.read_text()), False
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root.parent, prefix=prefix))
    try:
        manifest = write(staging)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        shutil.rmtree(root, ignore_errors=True)  # a lake without a manifest is incomplete
        staging.rename(root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root, manifest, True


def print_cached_lake(
    argv: list[str],
    sizes: Callable[..., Any],
    cached: Callable[[Path, Any], tuple[Path, dict[str, Any], bool]],
) -> int:
    """`main` of a generator taking four sizes and DATA_DIR: prints the manifest of the cached
    lake (with its folder as `root`)."""
    *numbers, data_dir = argv
    root, manifest, made = cached(Path(data_dir), sizes(*map(int, numbers)))
    print(json.dumps({**manifest, "root": str(root), "generated_now": made}))
    return 0


@dataclass(frozen=True)
class PathSpec:
    """One measured path: `function` (in the benchmark's `paths.FUNCTIONS`) on `input`."""

    key: str
    label: str
    function: str
    input: str


class ChildFailed(RuntimeError):
    pass


def run_child(
    module: str,
    function: str,
    source: Path,
    work_root: Path,
    timeout: float,
    what: str,
    keep_lake_at: Path | None = None,
) -> dict[str, Any]:
    """One measurement (`python -m MODULE FUNCTION SOURCE WORKDIR RESULT_JSON`) in a fresh
    interpreter, named `what` in errors; its scratch folder is removed afterwards, except for
    its lake when `keep_lake_at` is given."""
    work_root.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(dir=work_root, prefix=f"{function}-"))
    result = workdir / "result.json"
    try:
        completed = run_module(
            module,
            function,
            source,
            workdir,
            result,
            stdout=subprocess.DEVNULL,  # the services log to stdout; not what is measured
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            check=False,
        )
        if completed.returncode != 0 or not result.exists():
            tail = "\n".join(completed.stderr.strip().splitlines()[-15:])
            raise ChildFailed(f"{what} exited {completed.returncode}:\n{tail}")
        if keep_lake_at is not None:
            shutil.rmtree(keep_lake_at, ignore_errors=True)
            (workdir / "lake").rename(keep_lake_at)
        return dict(json.loads(result.read_text()))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def best_run(runs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fastest of `runs`, and the seconds of all of them: best, median, all, rows/s."""
    import statistics  # not at the top: a measured child imports this module, through `MANIFEST`

    seconds = [r["seconds"] for r in runs]
    best = min(range(len(runs)), key=lambda i: seconds[i])
    timing = {
        "seconds_best": round(seconds[best], 4),
        "seconds_median": round(statistics.median(seconds), 4),
        "seconds_all": [round(s, 4) for s in seconds],
        "rows_per_s": round(runs[best]["rows"] / seconds[best], 1) if seconds[best] > 0 else 0.0,
    }
    return runs[best], timing
