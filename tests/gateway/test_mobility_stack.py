"""`vessel clone … --wait` and `vessel migrate … --wait` driving the real services: the CLI
talks to the gateway, which sends the commands protection composes into backups and
restores that the mover runs; the copies hold the same bytes as the source.

NEEDS THE FULL STACK (vessel_dev/rig/stack.py): every service its own process, real NATS, real
S3, emulated Kubernetes API servers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import full_stack, source_app
from vessel.kube.client import KubeCluster
from vessel_cli.main import main as cli
from vessel_dev.rig.scenario import (
    APP,
    CLAIM,
    NAMESPACE,
    bound_volume_path,
    tree_digest,
)
from vessel_dev.rig.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300), pytest.mark.usefixtures("no_client_env")]
APP_ID = f"cluster-a.{NAMESPACE}.{APP}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with full_stack(tmp_path_factory.mktemp("mobility-cli")) as running:
        yield running


@pytest.fixture(scope="module")
async def source(stack: Stack) -> dict[str, str]:
    """The app in cluster A with data; its digest."""
    return await source_app(stack)


@pytest.fixture
def run(stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    monkeypatch.setenv("VESSEL_ENDPOINT", stack.gateway)  # open mode, on loopback

    async def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = await asyncio.to_thread(cli, list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


async def discovered(run: Any) -> None:
    for _ in range(300):
        code, out, _ = await run("-o", "json", "app", "get", APP_ID)
        if code == 0 and '"volume_name": "pvc-' in out:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"app {APP_ID} was not discovered with its bound claim")


async def copy_in_b(stack: Stack, namespace: str) -> dict[str, str]:
    b = KubeCluster(stack.kubeconfigs["cluster-b"], "cluster-b")
    return tree_digest(await bound_volume_path(b, namespace, CLAIM))


async def test_clone_then_migrate_through_the_cli(
    stack: Stack, source: dict[str, str], run: Any
) -> None:
    await discovered(run)
    code, out, err = await run(
        "-o", "json", "clone", APP_ID, "--to-cluster", "cluster-b", "--bucket", "default",
        "--namespace-map", f"{NAMESPACE}:shop-cli-clone", "--wait", "--timeout", "180",
    )  # fmt: skip
    assert code == 0, err
    cloned = json.loads(out)
    assert (cloned["kind"], cloned["phase"]) == ("clone", "Completed"), cloned
    assert await copy_in_b(stack, "shop-cli-clone") == source

    code, out, err = await run(
        "-o", "json", "migrate", APP_ID, "--to-cluster", "cluster-b", "--bucket", "default",
        "--namespace-map", f"{NAMESPACE}:shop-cli-moved", "--wait", "--timeout", "180",
    )  # fmt: skip
    assert code == 0, err
    moved = json.loads(out)
    assert (moved["kind"], moved["phase"]) == ("migrate", "Completed"), moved
    steps = [(i["name"], i["state"]) for i in moved["items"]]
    assert steps == [("backup", "Completed"), ("restore", "Completed"), ("scale-down", "Completed")]
    assert await copy_in_b(stack, "shop-cli-moved") == source
    a = KubeCluster(stack.kubeconfigs["cluster-a"], "cluster-a")
    deployment = await a.get("apps/v1", "Deployment", "shop-db", NAMESPACE)
    assert deployment is not None and deployment["spec"]["replicas"] == 0
