"""Reading the deploy files for the static tests (no Docker engine runs here)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
COMPOSE_CLUSTER = DEPLOY / "compose.cluster.yaml"
COMPOSE_MINIO = DEPLOY / "compose.minio-distributed.yaml"
COMPOSE_FILES = (COMPOSE, COMPOSE_CLUSTER, COMPOSE_MINIO)
NATS_CONF = DEPLOY / "nats" / "nats.conf"
NATS_CLUSTER_CONF = DEPLOY / "nats" / "cluster" / "nats.conf"

# Services built from the repository's Dockerfile, and the SERVICE they are built with.
NOVA_SERVICES = {
    "ingestor": "ingestor",
    "transformer": "transformer",
    "api": "api",
    "forecaster": "forecaster",
    "forecaster-worker": "forecaster",
}
ONE_SHOTS = {"storage-init"}
# `${NAME}`, `${NAME:-default}`, `${NAME:?message}`, `${NAME-x}`, `${NAME?x}`
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<rest>[^}]*)\}")
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|ACCESS_KEY|API_KEYS|_KEYS$|TOKEN|ROOT_USER|NATS_+USER)")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def interpolations(path: Path) -> list[re.Match[str]]:
    """Every `${...}` in the parsed file's strings (comments are not interpolated)."""
    found: list[re.Match[str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(key)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str):
            found.extend(INTERPOLATION.finditer(node))

    walk(load(path))
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # KEY=VALUE form
        return dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _merge_list_by(base: list[Any], override: list[Any], key: Any) -> list[Any]:
    merged = {key(item): item for item in base}
    merged.update({key(item): item for item in override})
    return list(merged.values())


def split_volume(entry: Any) -> list[str]:
    """`source:target[:mode]`, not splitting inside `${VAR:-default}`."""
    if isinstance(entry, dict):
        return [str(entry.get("source", "")), str(entry["target"])]
    parts, depth, current = [], 0, ""
    for char in str(entry):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == ":" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def _volume_target(entry: Any) -> str:
    parts = split_volume(entry)
    return parts[1] if len(parts) > 1 else parts[0]


def merge_compose(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`docker compose -f base -f override` for what these files use: mappings merge,
    volumes and ports merge by target, command/entrypoint/healthcheck are replaced."""
    merged = copy.deepcopy(base)
    for section in ("volumes", "networks"):
        if override.get(section):
            merged.setdefault(section, {}).update(copy.deepcopy(override[section]))
    services = merged.setdefault("services", {})
    for name, spec in override.get("services", {}).items():
        target = services.setdefault(name, {})
        for key, value in spec.items():
            if key in ("environment", "depends_on", "deploy", "networks", "build") and isinstance(
                target.get(key), dict
            ):
                target[key] = {**target[key], **copy.deepcopy(value)}
            elif key == "volumes" and target.get(key):
                target[key] = _merge_list_by(target[key], value, _volume_target)
            else:
                target[key] = copy.deepcopy(value)
    return merged


def nats_conf_value(text: str, key: str) -> str | None:
    """The first `key: value` (or `key = value`) of a NATS config, comments removed."""
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(rf"^{re.escape(key)}\s*[:=]\s*(.+?)\s*$", line)
        if match:
            return match.group(1).strip('"')
    return None


def nats_block(text: str, name: str) -> str:
    """Body of a top-level `name { ... }` block of a NATS config (comments removed)."""
    lines = [line.split("#", 1)[0] for line in text.splitlines()]
    body: list[str] = []
    depth = 0
    inside = False
    for line in lines:
        if not inside and re.match(rf"^\s*{re.escape(name)}\s*[:=]?\s*\{{", line):
            inside, depth = True, line.count("{") - line.count("}")
            continue
        if inside:
            depth += line.count("{") - line.count("}")
            if depth <= 0:
                return "\n".join(body)
            body.append(line)
    raise AssertionError(f"no {name} {{...}} block")


def nats_routes(text: str) -> list[str]:
    cluster = nats_block(text, "cluster")
    match = re.search(r"routes\s*[:=]\s*\[(.*?)\]", cluster, re.S)
    assert match, "cluster block has no routes list"
    return re.findall(r"nats-route://[^\s,\]]+", match.group(1))
