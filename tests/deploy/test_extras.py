"""Each service's extra is enough for it, checked fast in this venv (the slow, real check is
`make install-size`: a clean venv per extra). Every third-party module a service can import,
lazy imports included, must come from a distribution that core + its extra pull in."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO_ROOT

SERVICES = ("api", "ingestor", "transformer", "forecaster")
# Heavy libraries the read-only API and the ingestor never use: keep them out of their images.
NOT_FOR_SMALL_IMAGES = {"duckdb", "pandas", "scipy", "statsforecast", "prophet", "numba"}


def load_install_size() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "nova_install_size", REPO_ROOT / "deploy" / "install_size.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


install_size = load_install_size()
PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def closure(requirements: list[str]) -> set[str]:
    """Distribution names the requirements install, transitively (as resolved in this venv)."""
    names: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        try:
            dist = distribution(requirement.name)
        except PackageNotFoundError:
            continue
        names.add(key[0])
        for raw in dist.requires or []:
            child = Requirement(raw)
            extras = requirement.extras or {""}
            if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in extras):
                child.marker = None
                todo.append(child)
    return names


def service_requirements(service: str) -> list[str]:
    return [*PROJECT["dependencies"], *PROJECT["optional-dependencies"][service]]


@pytest.fixture(scope="module")
def module_owners() -> dict[str, list[str]]:
    return packages_distributions()


@pytest.mark.parametrize("service", SERVICES)
def test_every_module_a_service_imports_comes_with_its_extra(
    service: str, module_owners: dict[str, list[str]]
) -> None:
    installed = closure(service_requirements(service))
    missing = {}
    for name in install_size.service_modules(service):
        top = name.split(".")[0]
        if top in ("services", "shared") or top in sys.stdlib_module_names:
            continue
        owners = {canonicalize_name(d) for d in module_owners.get(top, [])}
        if not owners & installed:
            missing[name] = sorted(owners) or ["<not installed here>"]
    assert not missing, f"{service} imports modules its extra does not install: {missing}"


@pytest.mark.parametrize("service", ["api", "ingestor"])
def test_small_images_stay_free_of_heavy_libraries(service: str) -> None:
    installed = closure(service_requirements(service))
    assert not installed & NOT_FOR_SMALL_IMAGES


def test_the_api_reaches_none_of_the_other_services_code() -> None:
    modules = install_size.service_modules("api")
    foreign = [
        m
        for m in modules
        if m.startswith("services.") and not m.startswith(("services.api", "services.__init__"))
    ]
    assert foreign == [] or foreign == ["services"]
    assert not [m for m in modules if m.split(".")[0] in ("duckdb", "faststream", "pandas")]


def test_storage_init_client_is_a_core_dependency() -> None:
    assert "minio" in closure(PROJECT["dependencies"])
