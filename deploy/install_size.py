"""Installed size of each service's dependency set, measured in clean virtualenvs.

    python deploy/install_size.py                 # api, ingestor, transformer, forecaster
    python deploy/install_size.py --extras api    # just one
    python deploy/install_size.py --keep /tmp/sizes --check-imports

For every service extra this builds the project wheel once, creates a fresh virtualenv,
installs `<wheel>[<extra>]` (not editable: what a container image gets), and reports the
venv's size on disk in MB against the target (600 MB for api, ingestor and transformer; the
forecaster is reported apart, with no target). The largest installed distributions are listed
so that an extra that grew can be traced to the package that made it grow.

`--check-imports` also proves that the extra is enough: every module the service can import
(its own package, `shared`, and every `services.*` module those reach, lazy imports inside
functions included) is imported inside that venv, from a folder outside the repository, so a
dependency that only the developer's `.[all]` venv has is caught. Exit code 1 when a service
is over its target or an import fails.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_MB = 600.0
SERVICES = ("api", "ingestor", "transformer", "forecaster")
WITHOUT_TARGET = {"forecaster"}
MB = 1024 * 1024

# Run inside the service venv: import every module named on stdin, report the failures.
_IMPORT_PROBE = """
import importlib, json, sys
failed = {}
for name in json.load(sys.stdin):
    try:
        importlib.import_module(name)
    except Exception as error:  # noqa: BLE001 - report every kind of failure
        failed[name] = f"{type(error).__name__}: {error}"
json.dump(failed, sys.stdout)
"""

# Run inside the service venv: size of every installed distribution, from its RECORD.
_DIST_SIZES = """
import json, sys
from importlib.metadata import distributions
from pathlib import Path
sizes = {}
for dist in distributions():
    total = 0
    for file in dist.files or []:
        path = Path(dist.locate_file(file))
        try:
            total += path.stat().st_size
        except OSError:
            pass
    sizes[dist.metadata["Name"]] = total
json.dump(sizes, sys.stdout)
"""


def tree_bytes(root: Path) -> int:
    """Apparent size of every regular file under root (symlinks not followed)."""
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def _module_file(name: str) -> Path | None:
    parts = name.split(".")
    if parts[0] not in ("services", "shared"):
        return None
    base = REPO.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    module = base.with_suffix(".py")
    return module if module.is_file() else None


def _imports_of(path: Path, package: str) -> set[str]:
    """Absolute module names imported anywhere in the file (function bodies included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            if module and module != "__future__":
                names.add(module)
                # `from services.x import y` may name a submodule y
                for alias in node.names:
                    if _module_file(f"{module}.{alias.name}"):
                        names.add(f"{module}.{alias.name}")
    return names


def service_modules(service: str) -> list[str]:
    """Every module `python -m services.<service>` may import: own code and third party."""
    start = [f"services.{service}.__main__"]
    start += [
        ".".join(p.relative_to(REPO).with_suffix("").parts)
        for p in sorted((REPO / "services" / service).rglob("*.py"))
    ]
    start += [
        ".".join(p.relative_to(REPO).with_suffix("").parts)
        for p in sorted((REPO / "shared").rglob("*.py"))
    ]
    seen: set[str] = set()
    third_party: set[str] = set()
    todo = [m.removesuffix(".__init__") for m in start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name)
        if path is None:
            third_party.add(name)
            continue
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        todo.extend(_imports_of(path, package) - seen)
    # `__main__` modules are followed for their imports but never imported: that would start
    # the service.
    own = {n for n in seen if _module_file(n) and not n.endswith(".__main__")}
    return sorted(own) + sorted(third_party)


def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, check=True, text=True, **kwargs)  # type: ignore[call-overload]


def build_wheel(out: Path) -> Path:
    run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(REPO)],
    )
    (wheel,) = out.glob("*.whl")
    return wheel


def measure(
    service: str, wheel: Path, venvs: Path, check_imports: bool
) -> tuple[float, dict[str, int], dict[str, str]]:
    venv = venvs / service
    run([sys.executable, "-m", "venv", "--clear", str(venv)])
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--quiet", f"{wheel}[{service}]"])
    size_mb = tree_bytes(venv) / MB
    outside = venvs / f"{service}-cwd"  # not the repo: imports must come from the venv
    outside.mkdir(exist_ok=True)
    sizes = json.loads(
        run([str(python), "-c", _DIST_SIZES], capture_output=True, cwd=outside).stdout
    )
    failed: dict[str, str] = {}
    if check_imports:
        modules = service_modules(service)
        probe = run(
            [str(python), "-c", _IMPORT_PROBE],
            input=json.dumps(modules),
            capture_output=True,
            cwd=outside,
            timeout=600,
        )
        failed = json.loads(probe.stdout)
        # Every image also runs `nova` (compose's storage-init step, operator commands).
        cli = subprocess.run(
            [str(venv / "bin" / "nova"), "storage", "init", "--help"],
            capture_output=True,
            text=True,
            cwd=outside,
            timeout=120,
        )
        if cli.returncode != 0:
            failed["nova storage init --help"] = (cli.stderr or cli.stdout).strip()[-500:]
    return size_mb, sizes, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--extras", nargs="+", choices=SERVICES, default=list(SERVICES))
    parser.add_argument("--keep", type=Path, help="create the venvs here and keep them")
    parser.add_argument(
        "--check-imports",
        action="store_true",
        help="import every module each service may reach inside its venv",
    )
    parser.add_argument("--top", type=int, default=8, help="largest distributions to list")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="nova-install-size-") as scratch:
        venvs = args.keep or Path(scratch)
        venvs.mkdir(parents=True, exist_ok=True)
        wheel = build_wheel(Path(scratch) / "wheel")
        print(f"wheel {wheel.name}; one clean venv per extra under {venvs}\n")
        ok = True
        for service in args.extras:
            size_mb, sizes, failed = measure(service, wheel, venvs, args.check_imports)
            if service in WITHOUT_TARGET:
                verdict = "no target (offline, its own image)"
            elif size_mb <= TARGET_MB:
                verdict = f"OK, under {TARGET_MB:.0f} MB"
            else:
                verdict = f"OVER the {TARGET_MB:.0f} MB target"
                ok = False
            print(f"{service:<12} {size_mb:8.1f} MB   {verdict}")
            largest = sorted(sizes.items(), key=lambda kv: kv[1], reverse=True)[: args.top]
            print("    largest: " + ", ".join(f"{n} {b / MB:.0f}" for n, b in largest))
            if args.check_imports:
                if failed:
                    ok = False
                    for name, error in sorted(failed.items()):
                        print(f"    IMPORT FAILS: {name}: {error}")
                else:
                    print("    imports: every module the service reaches imports")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
