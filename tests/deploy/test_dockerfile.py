"""Static checks of the Dockerfile and .dockerignore (no Docker engine runs here)."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
SERVICES = ("api", "ingestor", "transformer", "forecaster")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def test_multi_stage_builder_installs_the_extra_of_its_service_arg() -> None:
    builder, runtime = stages()
    assert builder[0][1].endswith(" AS builder") and runtime[0][1].endswith(" AS runtime")
    assert ("ARG", "SERVICE=api") in builder and ("ARG", "SERVICE=api") in runtime
    runs = [rest for keyword, rest in builder if keyword == "RUN"]
    assert any(re.search(r"pip install \"\.\[\$\{SERVICE\}\]\"", r) for r in runs)
    assert not any("-e " in r for r in runs), "not editable: the venv must stand alone"
    guard = next(r for r in runs if "case" in r)
    for service in SERVICES:
        assert service in guard
    # every SERVICE the guard accepts is an extra of the project
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert set(SERVICES) <= extras.keys()
    copies = [rest for keyword, rest in builder if keyword == "COPY"]
    assert {"shared ./shared", "services ./services", "pyproject.toml README.md ./"} <= set(copies)


def test_runtime_is_slim_copies_the_venv_and_runs_as_non_root() -> None:
    _, runtime = stages()
    base = runtime[0][1].split()[0]
    from_args = [rest for keyword, rest in instructions() if keyword == "ARG"]
    assert "PYTHON_IMAGE=python:3.11-slim-bookworm" in from_args and base == "${PYTHON_IMAGE}"
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in runtime
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert any("useradd" in rest and "--uid 10001" in rest for k, rest in runtime if k == "RUN")
    # the user comes before the process starts
    keywords = [k for k, _ in runtime]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")


def test_entrypoint_runs_the_service_module_and_a_healthcheck_exists() -> None:
    _, runtime = stages()
    entry = dict(runtime)["ENTRYPOINT"]
    assert 'exec python -m \\"services.${SERVICE}\\" \\"$@\\"' in entry
    env = " ".join(rest for keyword, rest in runtime if keyword == "ENV")
    assert "SERVICE=${SERVICE}" in env and "PATH=/opt/venv/bin:${PATH}" in env
    health = dict(runtime)["HEALTHCHECK"]
    assert '"python", "/usr/local/lib/nova/healthcheck.py"' in health
    assert ("COPY", "deploy/healthcheck.py /usr/local/lib/nova/healthcheck.py") in runtime
    for service in SERVICES:  # python -m services.<service> exists for every SERVICE
        assert (REPO_ROOT / "services" / service / "__main__.py").is_file()


def test_no_secrets_or_settings_baked_in() -> None:
    for keyword, rest in instructions():
        if keyword in ("ENV", "ARG", "LABEL"):
            assert not re.search(r"(PASSWORD|SECRET|ACCESS_KEY|API__KEYS|TOKEN)", rest), rest
            assert "minioadmin" not in rest


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Go filepath.Match plus `**` as Docker uses them: `*` stays within one path segment."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            close = pattern.index("]", i)
            out += pattern[i : close + 1]
            i = close + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def dockerignore_excludes(path: str) -> bool:
    """Docker's rule: a pattern matching a folder excludes what is below it; the last matching
    pattern wins; `!` re-includes."""
    parents = ["/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 2)]
    excluded = False
    for raw in (REPO_ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        regex = _pattern_regex(line.lstrip("!").rstrip("/"))
        if any(regex.fullmatch(candidate) for candidate in parents):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_local_state_out_and_what_the_build_copies_in() -> None:
    for path in (
        ".git/config",
        ".venv/bin/python",
        "var/lake/bronze/x.parquet",
        "test-artifacts/report.html",
        ".env",
        "deploy/.env",
        "deploy/data/inbox/dadosSuprimentos.xlsx",
        "tests/conftest.py",
        "services/api/__pycache__/app.cpython-311.pyc",
        "dadosSuprimentos.xlsx",
    ):
        assert dockerignore_excludes(path), f"{path} would enter the build context"
    for path in (
        "pyproject.toml",
        "README.md",
        "shared/storage.py",
        "services/api/static/app.js",
        "services/transformer/sql/silver/erp_requisitions.sql",
        "deploy/healthcheck.py",
    ):
        assert not dockerignore_excludes(path), f"{path} is needed by the build"
