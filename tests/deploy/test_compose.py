"""Static checks of deploy/compose*.yaml: no Docker engine runs here, so the files are parsed
and held to what the stack needs (images, healthchecks, volumes, env, guarded credentials)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shared.settings import NovaSettings, environment_variable_names
from tests.deploy.compose_files import (
    COMPOSE,
    COMPOSE_CLUSTER,
    COMPOSE_FILES,
    COMPOSE_MINIO,
    DEPLOY,
    INTERPOLATION,
    NATS_CLUSTER_CONF,
    NATS_CONF,
    NOVA_SERVICES,
    ONE_SHOTS,
    SECRET_NAME,
    environment,
    interpolations,
    load,
    merge_compose,
    nats_block,
    nats_conf_value,
    nats_routes,
    split_volume,
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def interpolate_defaults(value: str) -> str:
    """What compose makes of `${X:-default}` with nothing set (credentials stay as names)."""
    return INTERPOLATION.sub(
        lambda m: m["rest"] if m["op"] in (":-", "-") else f"<{m['name']}>", value
    )


def named_volumes(service: dict[str, Any]) -> list[str]:
    names = []
    for entry in service.get("volumes", []):
        source = split_volume(entry)[0]
        if not source.startswith((".", "/", "$", "~")):
            names.append(source)
    return names


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """target -> source of every volume entry."""
    out = {}
    for entry in service.get("volumes", []):
        parts = split_volume(entry)
        out[parts[1]] = parts[0]
    return out


# --- every compose file ----------------------------------------------------------------------


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_every_credential_is_required_from_env(path: Path) -> None:
    """A credential is never defaulted: `${VAR:?message}` stops compose when it is unset."""
    found = []
    for match in interpolations(path):
        if SECRET_NAME.search(match["name"]):
            found.append(match["name"])
            assert match["op"] == ":?", f"{path.name}: ${{{match['name']}}} must use :? guard"
            assert match["rest"].strip(), f"{path.name}: ${{{match['name']}:?}} needs a message"
    if path != COMPOSE_CLUSTER:  # the override only adds NATS nodes
        assert found


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_no_plaintext_secrets(path: Path) -> None:
    text = path.read_text()
    assert "minioadmin" not in text  # MinIO's well-known default credentials
    data = load(path)
    for name, service in data.get("services", {}).items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", value), (
                    f"{path.name}: {name}.{key} must come from deploy/.env, not {value!r}"
                )


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_every_nova_variable_is_a_setting(path: Path) -> None:
    known = set(environment_variable_names())
    used = set(re.findall(r"\bNOVA_[A-Z0-9_]+", path.read_text()))
    assert not used - known, f"{path.name} sets variables no setting reads: {used - known}"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_no_container_names_and_dependencies_exist(path: Path) -> None:
    data = load(path) if path != COMPOSE_CLUSTER else merge_compose(load(COMPOSE), load(path))
    services = data["services"]
    declared_volumes = set((data.get("volumes") or {}).keys())
    for name, service in services.items():
        assert "container_name" not in service, f"{name}: container_name prevents scaling"
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for volume in named_volumes(service):
            assert volume in declared_volumes, f"{name} uses undeclared volume {volume}"


# --- compose.yaml: the single machine -------------------------------------------------------


def test_every_service_has_an_image_and_a_healthcheck(services: dict[str, Any]) -> None:
    assert set(services) >= {"nats", "minio", "storage-init", *NOVA_SERVICES}
    for name, service in services.items():
        assert service.get("image") or service.get("build"), f"{name} has no image/build"
        if name in ONE_SHOTS:
            assert service.get("restart") == "no"
            assert "healthcheck" not in service
            continue
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL")
        assert service.get("restart") in ("unless-stopped", "always", "on-failure")


def test_nova_services_are_built_from_the_dockerfile_with_their_service(
    services: dict[str, Any],
) -> None:
    for name, kind in {**NOVA_SERVICES, "storage-init": "api"}.items():
        service = services[name]
        build = service["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == (
            DEPLOY.parent / "Dockerfile"
        )
        assert build["args"]["SERVICE"] == kind
        assert interpolate_defaults(service["image"]).endswith(f"-{kind}:latest")
        assert service.get("init") is True or name in ONE_SHOTS, f"{name}: init for signals"
        if name not in ONE_SHOTS:
            assert service["healthcheck"]["test"] == [
                "CMD",
                "python",
                "/usr/local/lib/nova/healthcheck.py",
            ]


def test_nova_services_get_their_settings(services: dict[str, Any]) -> None:
    for name in [*NOVA_SERVICES, "storage-init"]:
        env = environment(services[name])
        assert env["NOVA_NATS__URL"] == "nats://nats:4222"
        assert env["NOVA_STORAGE__BACKEND"] == "s3"
        assert interpolate_defaults(env["NOVA_STORAGE__S3_ENDPOINT_URL"]) == "http://minio:9000"
        assert env["NOVA_STORAGE__S3_BUCKET"]
        assert env["NOVA_STORAGE__S3_ACCESS_KEY"].startswith("${")
        assert env["NOVA_STORAGE__S3_SECRET_KEY"].startswith("${")
        # the same .env variables as the NATS server's authorization block
        assert env["NOVA_NATS__USER"].startswith("${NATS_USER:?")
        assert env["NOVA_NATS__PASSWORD"].startswith("${NATS_PASSWORD:?")
        assert env["NOVA_LOG__FORMAT"] == "json"
        assert env["NOVA_VAR_DIR"] == "/var/lib/nova"  # the image's writable home
        # compose's values are valid settings (credentials replaced by placeholders)
        values = {k: interpolate_defaults(v) for k, v in env.items()}
        with pytest.MonkeyPatch.context() as patch:
            for key in list(os.environ):
                if key.startswith("NOVA_"):
                    patch.delenv(key)
            for key, value in values.items():
                patch.setenv(key, value)
            settings = NovaSettings(_env_file=None)  # type: ignore[call-arg]
        assert settings.storage.backend == "s3"
        assert settings.nats.auth_options() == {
            "user": "<NATS_USER>",
            "password": "<NATS_PASSWORD>",
        }
    # the lake credentials of the services are not MinIO's root user's
    service_keys = environment(services["api"])["NOVA_STORAGE__S3_ACCESS_KEY"]
    init_keys = environment(services["storage-init"])["NOVA_STORAGE__S3_ACCESS_KEY"]
    assert "S3_ACCESS_KEY" in service_keys and "MINIO_ROOT_USER" in init_keys


def test_nats_has_jetstream_config_volume_and_js_healthcheck(services: dict[str, Any]) -> None:
    nats = services["nats"]
    command = nats["command"]
    conf_in_container = command[command.index("--config") + 1]
    volumes = mounts(nats)
    assert volumes[conf_in_container] == "./nats/nats.conf"
    assert (DEPLOY / "nats" / "nats.conf").is_file()
    store = nats_conf_value(NATS_CONF.read_text(), "store_dir")
    assert store in volumes and volumes[store] in named_volumes(nats), "JetStream store on a volume"
    test = " ".join(nats["healthcheck"]["test"])
    port = nats_conf_value(NATS_CONF.read_text(), "http_port")
    assert f"127.0.0.1:{port}/healthz?js-enabled-only=true" in test
    assert "ports" not in nats  # clients stay on the compose network
    # what the config's authorization block reads, from deploy/.env
    env = environment(nats)
    assert env["NATS_USER"].startswith("${NATS_USER:?")
    assert env["NATS_PASSWORD"].startswith("${NATS_PASSWORD:?")
    authorization = nats_block(NATS_CONF.read_text(), "authorization")
    assert nats_conf_value(authorization, "user") == "$NATS_USER"
    assert nats_conf_value(authorization, "password") == "$NATS_PASSWORD"


def test_minio_has_a_volume_root_credentials_and_healthcheck(services: dict[str, Any]) -> None:
    minio = services["minio"]
    assert minio["command"][:2] == ["server", "/data"]
    assert mounts(minio)["/data"] == "minio-data"
    env = environment(minio)
    assert env["MINIO_ROOT_USER"].startswith("${MINIO_ROOT_USER:?")
    assert env["MINIO_ROOT_PASSWORD"].startswith("${MINIO_ROOT_PASSWORD:?")
    assert minio["healthcheck"]["test"] == ["CMD", "mc", "ready", "local"]
    for port in minio.get("ports", []):
        assert str(port).startswith("127.0.0.1:"), "the console is published on localhost only"


def test_storage_init_runs_once_before_every_nova_service(services: dict[str, Any]) -> None:
    init = services["storage-init"]
    assert init["entrypoint"][:3] == ["nova", "storage", "init"]
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"
    for name in NOVA_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["storage-init"]["condition"] == "service_completed_successfully"
        assert depends["nats"]["condition"] == "service_healthy"


def test_ingestor_binds_inbox_archive_quarantine(services: dict[str, Any]) -> None:
    ingestor = services["ingestor"]
    env = environment(ingestor)
    volumes = mounts(ingestor)
    for setting in ("INBOX_DIR", "ARCHIVE_DIR", "QUARANTINE_DIR"):
        folder = env[f"NOVA_INGESTOR__{setting}"]
        assert folder in volumes, f"{setting} {folder} is not mounted"
        source = interpolate_defaults(volumes[folder])
        assert source.startswith("./data/"), "a bind mount of a host folder"
    assert env["NOVA_INGESTOR__METRICS_PORT"] == "9101"
    # loopback is the default (issue 13); a scraper in another container needs the network
    assert env["NOVA_INGESTOR__METRICS_HOST"] == "0.0.0.0"
    assert "ports" not in ingestor
    # the API reads the quarantine reasons, read-only
    api_volumes = [str(v) for v in services["api"]["volumes"]]
    assert any(v.endswith(":/data/quarantine:ro") for v in api_volumes)


def test_transformer_scales(services: dict[str, Any]) -> None:
    transformer = services["transformer"]
    assert "container_name" not in transformer
    assert "ports" not in transformer and "hostname" not in transformer
    assert int(interpolate_defaults(str(transformer["deploy"]["replicas"]))) > 1


def test_api_is_published_bound_to_all_interfaces_and_needs_keys(
    services: dict[str, Any],
) -> None:
    api = services["api"]
    env = environment(api)
    assert env["NOVA_API__HOST"] == "0.0.0.0"
    (published,) = api["ports"]
    assert interpolate_defaults(published).endswith(f":{env['NOVA_API__PORT']}")
    assert env["NOVA_API__KEYS"].startswith("${API_KEYS:?")


def test_forecaster_runs_on_a_schedule_under_a_profile(services: dict[str, Any]) -> None:
    forecaster = services["forecaster"]
    assert forecaster["profiles"] == ["forecast"]
    hours = float(interpolate_defaults(environment(forecaster)["NOVA_FORECASTER__INTERVAL_HOURS"]))
    assert hours > 0, "a periodic loop, not one run"
    worker = services["forecaster-worker"]
    assert worker["profiles"] == ["forecast-workers"]
    assert worker["command"] == ["--worker"]
    assert "profiles" not in services["api"]  # the core stack starts without profiles


# --- compose.cluster.yaml: three NATS nodes, replicas x3 ------------------------------------


def test_cluster_override_runs_three_nats_nodes_and_services_use_all() -> None:
    merged = merge_compose(load(COMPOSE), load(COMPOSE_CLUSTER))
    services = merged["services"]
    nodes = {name: s for name, s in services.items() if name == "nats" or name.startswith("nats-")}
    assert len(nodes) == 3
    names = {environment(s)["NATS_SERVER_NAME"] for s in nodes.values()}
    assert names == {"nats-1", "nats-2", "nats-3"}
    stores = set()
    for node in nodes.values():
        command = node["command"]
        assert command[command.index("--config") + 1] == "/etc/nats/cluster/nats.conf"
        volumes = mounts(node)
        assert volumes["/etc/nats/cluster/nats.conf"] == "./nats/cluster/nats.conf"
        stores.add(volumes["/data"])
        assert "healthz?js-enabled-only=true" in " ".join(node["healthcheck"]["test"])
    assert len(stores) == 3, "each node its own JetStream store"
    authorization = nats_block(NATS_CLUSTER_CONF.read_text(), "authorization")
    assert nats_conf_value(authorization, "user") == "$NATS_USER"
    for node in nodes.values():  # every node gets the credentials its config reads
        env = environment(node)
        assert env["NATS_USER"] == environment(services["nats"])["NATS_USER"]
        assert env["NATS_PASSWORD"].startswith("${NATS_PASSWORD:?")
    # every node answers to the name the routes use
    hosts = {node.get("hostname") for node in nodes.values()}
    for node in nodes.values():
        hosts.update((node.get("networks") or {}).get("default", {}).get("aliases", []))
    routes = nats_routes(NATS_CLUSTER_CONF.read_text())
    routed = {re.sub(r"^nats-route://|:\d+$", "", r) for r in routes}
    assert routed == {"nats-1", "nats-2", "nats-3"} and routed <= hosts
    for name in NOVA_SERVICES:
        env = environment(services[name])
        servers = env["NOVA_NATS__URL"].split(",")
        assert {re.sub(r"^nats://|:\d+$", "", s) for s in servers} == routed
        assert env["NOVA_NATS__REPLICAS"] == "3"
        for node in ("nats", "nats-2", "nats-3"):
            assert services[name]["depends_on"][node]["condition"] == "service_healthy"
        # the override keeps the rest of the service (credentials, profile, build)
        assert "NOVA_STORAGE__S3_ACCESS_KEY" in env
        assert services[name]["build"]["args"]["SERVICE"] == NOVA_SERVICES[name]


# --- compose.minio-distributed.yaml ---------------------------------------------------------


def test_minio_distributed_has_four_drives_on_two_nodes_behind_a_balancer() -> None:
    data = load(COMPOSE_MINIO)
    services = data["services"]
    nodes = {n: s for n, s in services.items() if n.startswith("minio-")}
    assert len(nodes) == 2
    commands = {tuple(s["command"]) for s in nodes.values()}
    assert len(commands) == 1, "every node gets the same server list"
    (command,) = commands
    pool = command[-1]
    match = re.fullmatch(r"http://minio-\{1\.\.\.(\d+)\}/data\{1\.\.\.(\d+)\}", pool)
    assert match and int(match[1]) * int(match[2]) == 4
    drives = set()
    for name, node in nodes.items():
        assert node.get("hostname") == name
        volumes = mounts(node)
        assert set(volumes) == {"/data1", "/data2"}
        drives.update(volumes.values())
        assert node["healthcheck"]["test"] == ["CMD", "mc", "ready", "local"]
    assert len(drives) == 4, "four distinct drives"
    balancer = services["minio"]
    nginx = (DEPLOY / "minio" / "nginx.conf").read_text()
    for name in nodes:
        assert f"server {name}:9000" in nginx
    assert "proxy_set_header Host $http_host" in nginx  # S3 signatures cover the Host header
    assert "/minio/health/cluster" in " ".join(balancer["healthcheck"]["test"])


# --- deploy/.env.example --------------------------------------------------------------------


def test_env_example_lists_every_variable_compose_reads_without_secret_values() -> None:
    example = (DEPLOY / ".env.example").read_text()
    listed = dict(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", example, re.M))
    used = {m["name"] for path in COMPOSE_FILES for m in interpolations(path)}
    assert not used - listed.keys(), f"missing from deploy/.env.example: {used - listed.keys()}"
    for name, value in listed.items():
        if SECRET_NAME.search(name):
            assert not value.strip(), f"{name} must be empty in the example"
    ignored = (DEPLOY / ".gitignore").read_text().split()
    assert ".env" in ignored and "data/" in ignored


# --- a compose implementation, where one is installed ----------------------------------------


def compose_command() -> list[str] | None:
    """`docker compose` (v2) when its plugin is there, else the older `docker-compose` (v1)."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    found = shutil.which("docker-compose")
    return [found] if found else None


@pytest.mark.parametrize(
    "files",
    [(COMPOSE,), (COMPOSE, COMPOSE_CLUSTER), (COMPOSE_MINIO,)],
    ids=["compose", "compose+cluster", "minio-distributed"],
)
def test_compose_itself_accepts_the_files(files: tuple[Path, ...], tmp_path: Path) -> None:
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    credentials = {
        "MINIO_ROOT_USER": "user",
        "MINIO_ROOT_PASSWORD": "password-for-test",
        "S3_ACCESS_KEY": "access",
        "S3_SECRET_KEY": "secret",
        "API_KEYS": "key",
        "NATS_USER": "nova",
        "NATS_PASSWORD": "nats-password",
    }
    folder = DEPLOY
    if command[0].endswith("docker-compose"):
        # v1 predates the top-level `name:`; everything else it validates like v2
        folder = tmp_path / "deploy"
        shutil.copytree(DEPLOY, folder, ignore=shutil.ignore_patterns("data", ".env"))
        for path in folder.glob("compose*.yaml"):
            path.write_text(re.sub(r"(?m)^name: .*\n", "", path.read_text()))
    arguments = [item for path in files for item in ("-f", str(folder / path.name))]
    env = {k: v for k, v in os.environ.items() if not k.startswith(tuple(credentials))}
    ok = subprocess.run(
        [*command, *arguments, "--profile", "forecast", "config", "-q"],
        cwd=folder,
        env={**env, **credentials},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    if files != (COMPOSE,):
        return
    # a missing credential stops compose, naming it
    for name in ("MINIO_ROOT_PASSWORD", "NATS_PASSWORD"):
        missing = subprocess.run(
            [*command, *arguments, "config", "-q"],
            cwd=folder,
            env={**env, **{k: v for k, v in credentials.items() if k != name}},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert missing.returncode != 0 and name in missing.stderr
