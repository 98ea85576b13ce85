"""Static checks of the deployment files: the image and the compose stack (the Helm chart's
checks are in test_helm_*.py and test_rbac_in_use.py).

Nothing here builds or starts a container: the files are parsed and checked against the
project they deploy (console scripts, configuration schema, defaults)."""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from vessel.config import BucketConfig, VesselSettings, load_settings
from vessel.telemetry import tracing

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_CONFIG = ROOT / "deploy" / "compose" / "vessel.yaml"

RUNTIME_DIRS = frozenset({"data"})
"""Top-level host folders the compose stack fills at run time: not part of the repo."""

PER_CLUSTER_SCRIPTS = frozenset({"vessel-provisioner", "vessel-mover"})
"""Node agents: they take `--cluster ID` and work on that cluster's volumes."""

EXPECTED_SERVICES = frozenset(
    {"nats", "minio", "minio-init", "gateway", "discovery", "protection", "provisioner", "mover"}
)


# --- helpers -----------------------------------------------------------------------------


def _yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def _pyproject() -> dict[str, Any]:
    with PYPROJECT.open("rb") as f:
        return tomllib.load(f)


def _console_scripts() -> set[str]:
    return set(_pyproject()["project"]["scripts"])


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = _yaml(COMPOSE)
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    assert isinstance(data.get("services"), dict) and data["services"], "no services"
    return data


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


def _is_vessel(service: dict[str, Any]) -> bool:
    """Built from this repo's Dockerfile (or running its image)."""
    return "build" in service or str(service.get("image", "")).startswith("vessel:")


def _vessel_services(compose: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    found = [(n, s) for n, s in _services(compose).items() if _is_vessel(s)]
    assert found, "no Vessel service in docker-compose.yml"
    yield from found


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


_VOLUME = re.compile(r"(?P<source>(?:\$\{[^}]*\}|[^:])+):(?P<target>[^:]+)(?::[a-z,]+)?")
"""Short volume syntax; a `${VAR:-default}` source may itself hold a colon."""


def _binds(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of every volume entry, short or long syntax."""
    binds = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            binds.append((str(volume.get("source", "")), str(volume["target"])))
        else:
            match = _VOLUME.fullmatch(str(volume))
            assert match, f"unreadable volume {volume!r}"
            source, target = match["source"], match["target"]
            binds.append((source, target))
    return binds


def _settings(monkeypatch: pytest.MonkeyPatch) -> VesselSettings:
    """The compose stack's configuration, loaded as a service loads it."""
    for name in list(os.environ):
        if name.startswith("VESSEL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VESSEL_CONFIG", str(COMPOSE_CONFIG))
    return load_settings()


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) for each instruction, continuation lines joined."""
    text = re.sub(r"\\[ \t]*\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


# --- docker compose ----------------------------------------------------------------------


def test_compose_has_every_service_with_an_image_or_build(compose: dict[str, Any]) -> None:
    services = _services(compose)
    missing = EXPECTED_SERVICES - services.keys()
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"
    for name, service in services.items():
        assert service.get("image") or service.get("build"), f"{name}: neither image nor build"


def test_compose_build_contexts_hold_a_dockerfile(compose: dict[str, Any]) -> None:
    for name, service in _vessel_services(compose):
        build = service.get("build")
        assert build, f"{name}: Vessel services are built from the repo"
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "")
        path = ROOT / context / (dockerfile or "Dockerfile")
        assert path.is_file(), f"{name}: {path.relative_to(ROOT)} does not exist"


def test_compose_host_files_exist(compose: dict[str, Any]) -> None:
    named = set((compose.get("volumes") or {}).keys())
    referenced: set[Path] = set()
    for name, service in _services(compose).items():
        for source, _target in _binds(service):
            if "${" in source or source.startswith(("/", "~")):
                continue  # the user's machine, not the repo (e.g. the kubeconfig)
            if source.startswith("."):
                path = (ROOT / source).resolve()
                if path.relative_to(ROOT).parts[0] in RUNTIME_DIRS:
                    continue
                assert path.exists(), f"{name}: host path {source} does not exist in the repo"
                referenced.add(path)
            else:
                assert source in named, f"{name}: volume {source!r} is not declared"
    assert COMPOSE_CONFIG.resolve() in referenced, "deploy/compose/vessel.yaml is not mounted"


def test_compose_commands_are_console_scripts(compose: dict[str, Any]) -> None:
    scripts = _console_scripts()
    for name, service in _vessel_services(compose):
        command = _command(service)
        assert command, f"{name}: no command (the image would only print the CLI help)"
        assert command[0] in scripts, f"{name}: {command[0]!r} is not in [project.scripts]"


def test_compose_node_agents_serve_a_configured_cluster(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(monkeypatch)
    agents = 0
    for name, service in _vessel_services(compose):
        command = _command(service)
        if command[0] not in PER_CLUSTER_SCRIPTS:
            continue
        agents += 1
        assert "--cluster" in command, f"{name}: node agents need --cluster ID"
        cluster = settings.cluster(command[command.index("--cluster") + 1])
        assert service.get("privileged") is True, f"{name}: node agents run privileged"
        targets = {target for _source, target in _binds(service)}
        for backend in cluster.backends:
            assert str(backend.path) in targets, f"{name}: {backend.path} is not mounted"
    assert agents == len(PER_CLUSTER_SCRIPTS), "expected one provisioner and one mover"


def test_compose_secret_env_names_are_the_config_defaults(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    access = BucketConfig.model_fields["access_key_env"].default
    secret = BucketConfig.model_fields["secret_key_env"].default
    minio = _environment(_services(compose)["minio"])
    buckets = _settings(monkeypatch).buckets
    assert buckets, "the compose configuration has no bucket"
    for name, service in _vessel_services(compose):
        env = _environment(service)
        assert env.get(access) == minio["MINIO_ROOT_USER"], f"{name}: {access} != MinIO's user"
        assert env.get(secret) == minio["MINIO_ROOT_PASSWORD"], f"{name}: {secret} mismatch"
        for bucket in buckets:
            for var in (bucket.access_key_env, bucket.secret_key_env):
                assert var in env, f"{name}: bucket {bucket.name} reads {var}, which is unset"


def test_compose_services_read_the_mounted_config(compose: dict[str, Any]) -> None:
    for name, service in _vessel_services(compose):
        config = _environment(service).get("VESSEL_CONFIG")
        assert config, f"{name}: VESSEL_CONFIG is not set"
        mounted = {t for s, t in _binds(service) if (ROOT / s).resolve() == COMPOSE_CONFIG}
        assert config in mounted, f"{name}: {config} is not where vessel.yaml is mounted"


def test_compose_dependencies_wait_for_nats_and_the_bucket(compose: dict[str, Any]) -> None:
    for name, service in _vessel_services(compose):
        depends = service.get("depends_on")
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        assert depends.get("nats", {}).get("condition") == "service_started", name
        condition = depends.get("minio-init", {}).get("condition")
        assert condition == "service_completed_successfully", name


_DEFAULTED = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):-(?P<default>[^}]*)\}$")


def _interpolate(value: str, host: dict[str, str]) -> str:
    """A `${NAME:-default}` value as compose fills it from the host's environment."""
    match = _DEFAULTED.fullmatch(value)
    assert match, f"{value!r} is not of the form ${{NAME:-default}}"
    return host.get(match["name"]) or match["default"]


@pytest.mark.parametrize("host_value", ["", "http://otel-collector:4317"])
def test_compose_passes_an_optional_otlp_endpoint_to_every_service(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, host_value: str
) -> None:
    """Unset on the host, every service starts and exports nothing; set, every one exports."""
    host = {"VESSEL_OTLP_ENDPOINT": host_value} if host_value else {}
    names = ("VESSEL_OTLP_ENDPOINT", *tracing.OTEL_ENDPOINT_VARIABLES)
    for name, service in _vessel_services(compose):
        env = _environment(service)
        passed = {var: _interpolate(env[var], host) for var in names if var in env}
        assert passed, f"{name}: no OTLP endpoint variable"
        _settings(monkeypatch)  # only the compose configuration file
        for var, value in passed.items():
            monkeypatch.setenv(var, value)
        settings = load_settings()  # the configuration check every service starts with
        try:
            tracing.configure(name, settings.otlp_endpoint)
            assert tracing.exporting() is bool(host_value), f"{name}: {passed}"
        finally:
            tracing.shutdown()
            for var in passed:
                monkeypatch.delenv(var)


def test_compose_config_validates_and_matches_the_stack(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(monkeypatch)
    services = _services(compose)
    assert isinstance(settings, VesselSettings)
    nats_host = settings.nats_url.split("://", 1)[1].split(":", 1)[0]
    assert nats_host in services, f"nats_url names {nats_host!r}, not a compose service"
    for bucket in settings.buckets:
        host = bucket.endpoint.split(":", 1)[0]
        assert host in services, f"bucket {bucket.name}: {host!r} is not a compose service"
    port = settings.gateway_listen.rsplit(":", 1)[1]
    published = [str(p).rsplit(":", 1)[1] for p in services["gateway"].get("ports", [])]
    assert port in published, f"gateway listens on {port}, compose publishes {published}"
    mounts = {t for _name, s in _vessel_services(compose) for _src, t in _binds(s)}
    for cluster in settings.clusters:
        assert str(cluster.kubeconfig) in mounts, f"{cluster.id}: kubeconfig is not mounted"


# --- Dockerfile --------------------------------------------------------------------------


def test_dockerfile_runs_as_non_root() -> None:
    instructions = _dockerfile()
    assert instructions and instructions[0][0] in ("FROM", "ARG"), "no FROM"
    assert any(k == "FROM" and a.startswith("python:3.11-slim") for k, a in instructions)
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users, "the Dockerfile declares no USER: the image would run as root"
    user = users[-1].split(":", 1)[0]
    assert user not in ("root", "0"), f"the final USER is {user}"


def test_dockerfile_installs_btrfs_progs() -> None:
    runs = [args for keyword, args in _dockerfile() if keyword == "RUN"]
    apt = [run for run in runs if "apt-get install" in run and "btrfs-progs" in run]
    assert apt, "no RUN installs btrfs-progs with apt-get"
    assert "rm -rf /var/lib/apt/lists" in apt[0], "the apt lists are left in the image"
    assert any("pip install" in run for run in runs), "the project is not pip-installed"


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    entries = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in (".git", ".venv", *RUNTIME_DIRS):
        assert needed in entries, f".dockerignore does not exclude {needed}"
