"""The CLI's infrastructure verbs against a real gateway over TLS and a running
provisioner: table, JSON and YAML output, a backend added from a YAML file, errors, and
the shell completion script."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import yaml

from tests.gateway.harness import Pki
from tests.gateway.infra_lab import InfraWorld, infra_world
from tests.support import require
from vessel_cli.main import build_parser
from vessel_cli.main import main as cli
from vessel_dev.rig.processes import NatsServer

pytestmark = pytest.mark.usefixtures("no_client_env")


@pytest.fixture(scope="module")
async def world(
    nats_server: NatsServer, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[InfraWorld]:
    async with infra_world(nats_server, pki, Path(tmp_path_factory.mktemp("infra"))) as w:
        yield w


Run = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture
def run(
    world: InfraWorld, pki: Pki, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Run:
    monkeypatch.setenv("VESSEL_ENDPOINT", world.gateway.endpoint)
    monkeypatch.setenv("VESSEL_TLS_CA", str(pki.ca))
    monkeypatch.setenv("VESSEL_TOKEN", world.tokens["admin"])

    async def run(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(cli, list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


async def test_backend_list_as_table_json_and_yaml(world: InfraWorld, run: Run) -> None:
    code, out, err = await run("backend", "list", "--cluster", world.cluster)
    assert code == 0, err
    header, row = out.splitlines()
    columns = "CLUSTER NAME TYPE CAPACITY_BYTES FREE_BYTES VOLUMES POOLS"
    assert header.split() == columns.split()
    assert row.split()[:4] == [world.cluster, "local", "dir", str(1 << 30)]
    assert row.split()[-1] == "default"
    code, out, _ = await run("-o", "json", "backend", "get", "local", "--cluster", world.cluster)
    doc = json.loads(out)
    assert code == 0 and doc["name"] == "local" and doc["pools"][0]["name"] == "default"
    code, out, _ = await run("-o", "yaml", "volume", "list", "--namespace", "a")
    volumes = yaml.safe_load(out)
    assert code == 0 and sorted(v["claim"] for v in volumes) == ["data-a1", "data-a2"]


async def test_volume_and_class_tables_and_paging(world: InfraWorld, run: Run) -> None:
    code, out, err = await run("volume", "list", "--cluster", world.cluster, "--page-size", "2")
    assert code == 0 and len(out.splitlines()) == 3 and "more: --page-token" in err
    token = err.split("--page-token ")[1].strip()
    code, out, err = await run(
        "volume", "list", "--cluster", world.cluster, "--page-size", "2", "--page-token", token
    )
    assert code == 0 and len(out.splitlines()) == 2 and err == ""
    code, out, _ = await run("storageclass", "list", "--cluster", world.cluster)
    assert code == 0 and f"fast-{world.cluster}" in out and "True" in out
    code, out, _ = await run("-o", "json", "volumesnapshot", "list", "--namespace", "a")
    assert code == 0 and json.loads(out)["claim"] == "data-a1"
    code, out, _ = await run("cluster", "list")
    assert code == 0 and world.dark in out and "Pending" in out


async def test_backend_add_from_a_yaml_file_and_errors(
    world: InfraWorld,
    run: Run,
    tmp_path: Path,
) -> None:
    (tmp_path / "vols").mkdir()
    spec = tmp_path / "backend.yaml"
    spec.write_text(yaml.safe_dump({"name": "cli", "type": "dir", "path": str(tmp_path / "vols")}))
    code, out, err = await run("backend", "add", "-f", str(spec), "--cluster", world.cluster)
    assert code == 0, err
    assert out.splitlines()[1].split()[1:] == [world.cluster, "cli", "add", "default"]
    code, _, err = await run("backend", "add", "-f", str(spec), "--cluster", world.cluster)
    assert code == 1 and "ALREADY_EXISTS" in err
    code, _, err = await run("backend", "list", "--cluster", world.dark)
    assert code == 1 and "UNAVAILABLE" in err and world.dark in err
    code, _, err = await run(
        "--token", world.tokens["viewer"], "backend", "remove", "cli", "--cluster", world.cluster
    )
    assert code == 1 and "PERMISSION_DENIED" in err and "role admin" in err
    code, out, err = await run("backend", "remove", "cli", "--cluster", world.cluster)
    assert code == 0, err
    code, out, _ = await run("-o", "json", "activity", "list", "--action", "backend.add")
    records = json.loads(out)
    records = records if isinstance(records, list) else [records]
    assert any(r["target"].endswith("/backend/cli") for r in records)
    code, out, _ = await run("operation", "list", "--phase", "Canceled")
    assert code == 0


def test_completion_scripts_list_every_top_level_verb(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    top = "app backup restore operation backend storageclass volume volumesnapshot cluster"
    assert all(verb in script for verb in top.split())
    assert cli(["completion", "zsh"]) == 0
    assert "bashcompinit" in capsys.readouterr().out
    bash = shutil.which("bash")
    require(None if bash else "bash is not installed")
    assert bash is not None
    probe = 'COMP_WORDS=(vessel %s); COMP_CWORD=%d; _vessel; echo "${COMPREPLY[*]}"'
    for words, cword, expected in (
        ("vo", 1, "volume volumesnapshot"),
        ("-o json backend ''", 4, "list get add update remove --help"),
        ("operation c", 2, "cancel"),
    ):
        done = subprocess.run(
            [bash, "-c", script + probe % (words, cword)],
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stdout.strip() == expected
    assert {"backend", "activity", "completion"} <= set(
        build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    )
