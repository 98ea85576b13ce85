"""Builders for the execution-hook tests: running pods in the emulator (exec runs their
commands on this host), apps, hooks, and a fake `fsfreeze` that records its arguments."""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vessel.contracts.events import AppRecord
from vessel.contracts.hooks import ExecHook
from vessel.contracts.models import ClaimInfo, ResourceRef
from vessel.kube.client import KubeCluster

NS = "shop"


def container(
    name: str,
    image: str,
    env: dict[str, str] | None = None,
    mounts: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A container spec; `mounts` maps volume name to mount path."""
    env = {"WHO": name} | (env or {})
    return {
        "name": name,
        "image": image,
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "volumeMounts": [{"name": v, "mountPath": p} for v, p in (mounts or {}).items()],
    }


async def running_pod(
    kube: KubeCluster,
    name: str,
    labels: dict[str, str],
    containers: list[dict[str, Any]],
    *,
    claims: dict[str, str] | None = None,
    phase: str = "Running",
) -> None:
    """A pod in `phase` (nothing schedules pods in the emulator); `claims` maps volume name
    to claim name, other mounted volumes are emptyDirs."""
    volumes = [
        {"name": v, "persistentVolumeClaim": {"claimName": c}} for v, c in (claims or {}).items()
    ]
    mounted = {m["name"] for c in containers for m in c["volumeMounts"]}
    volumes += [{"name": v, "emptyDir": {}} for v in sorted(mounted - set(claims or {}))]
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": labels},
            "spec": {"containers": containers, "volumes": volumes},
        }
    )
    await kube.patch("v1", "Pod", name, NS, {"status": {"phase": phase}}, status=True)


async def deployment(
    kube: KubeCluster,
    name: str,
    match_labels: dict[str, str],
    expressions: list[dict[str, Any]] | None = None,
) -> ResourceRef:
    selector: dict[str, Any] = {"matchLabels": match_labels}
    if expressions:
        selector["matchExpressions"] = expressions
    await kube.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "replicas": 1,
                "selector": selector,
                "template": {
                    "metadata": {"labels": match_labels},
                    "spec": {"containers": [{"name": "app", "image": "shop/app:1"}]},
                },
            },
        }
    )
    return ResourceRef(api_version="apps/v1", kind="Deployment", name=name, namespace=NS)


async def namespace(kube: KubeCluster) -> None:
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})


def app(
    workloads: Sequence[ResourceRef],
    *,
    claims: Sequence[str] = (),
    grouping: str = "namespace",
    selector: dict[str, str] | None = None,
) -> AppRecord:
    """App `c1.shop.shop` (hooks built by `hook` belong to it)."""
    return AppRecord.model_validate(
        {
            "cluster": "c1",
            "namespace": NS,
            "name": "shop",
            "grouping": grouping,
            "selector": selector or {},
            "state": "Available",
            "workloads": list(workloads),
            "claims": [ClaimInfo(name=c, requested_bytes=1 << 30, phase="Bound") for c in claims],
        }
    )


def hook(hook_id: str, stage: str = "pre-snapshot", **fields: Any) -> ExecHook:
    base: dict[str, Any] = {"id": hook_id, "app_id": "c1.shop.shop", "stage": stage}
    if "container_name" not in fields and "container_image" not in fields:
        base["container_name"] = ".*"
    return ExecHook.model_validate(base | fields)


def record_to(log: Path) -> list[str]:
    """A command appending `<pod> <container> <args>` to `log` (WHO names the container)."""
    return ["sh", "-c", f'echo "$HOSTNAME $WHO $*" >> {log}', "hook"]


def fake_fsfreeze(tmp_path: Path, *, fail_on: str = "") -> tuple[dict[str, str], Path]:
    """Container env whose PATH finds a `fsfreeze` script that logs its arguments (and
    exits 1 for a mount path equal to `fail_on`), and the log it writes."""
    bindir, log = tmp_path / f"bin-{uuid.uuid4().hex[:6]}", tmp_path / "fsfreeze.log"
    bindir.mkdir()
    script = bindir / "fsfreeze"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$HOSTNAME $*" >> {log}\n'
        f'if [ "$2" = "{fail_on}" ]; then echo "fsfreeze: $2: cannot freeze" >&2; exit 1; fi\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return {"PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', os.defpath)}"}, log


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []
