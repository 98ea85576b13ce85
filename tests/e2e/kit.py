"""What the end-to-end modules share: an app without volumes, and waits on the gateway
for an app to be discovered and an operation to end."""

from __future__ import annotations

import asyncio
from typing import Any

from vessel.api.v1 import vessel_pb2 as pb
from vessel_dev.rig.scenario import deployment_object


def app_known(apps: Any, app_id: str) -> bool:
    return any(a.id == app_id for a in apps.ListApps(pb.ListAppsRequest()).apps)


def volumeless_app(name: str, motd: str) -> list[dict[str, Any]]:
    """An app without claims (namespace `name`): a ConfigMap and a Deployment."""
    labels = {"app": name}
    config = {"name": f"{name}-config", "namespace": name, "labels": labels}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": config, "data": {"motd": motd}},
        deployment_object(name, name, labels, {"name": "web", "image": "nginx"}, {}),
    ]


async def until_known(apps: Any, app_id: str) -> None:
    for _ in range(300):
        if app_known(apps, app_id):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{app_id} was not discovered within 30 s")


async def finished(ops: Any, op_id: str) -> Any:
    """The operation once it ended (or after 90 s)."""
    request = pb.WaitOperationRequest(id=op_id, timeout_seconds=90)
    return await asyncio.to_thread(ops.WaitOperation, request)
