"""In-place restore: the app goes back to the backup's state where it runs.

While it runs, KV `protection_locks` holds `inplace.<app_id>` = the operation id
(`state/locks.py`); the scheduler pauses the app's schedules while the key exists (a
backup taken mid-restore would capture a half-restored app). The app's workloads and the
claims the backup restores are deleted first, and the restore waits until they are gone:
the provisioner then deletes their volumes as the reclaim policy says, and the restore
provisions and fills new ones.
"""

from __future__ import annotations

import asyncio
import time

from services.protection.context import ProtectionContext
from services.protection.restore_plan import RestorePlan, describe
from vessel.contracts.events import AppRecord
from vessel.kube.errors import KubeError
from vessel.kube.objects import KubeObject
from vessel.kube.port import KubeApi

GONE_TIMEOUT = 60.0
POLL = 0.2


class InPlaceError(Exception):
    pass


async def lock(p: ProtectionContext, app_id: str, op_id: str) -> None:
    """Take the app's in-place lock; InPlaceError when another restore holds it."""
    holder = await (await p.lock_store()).take(app_id, op_id)
    if holder is not None:
        raise InPlaceError(f"app {app_id} is being restored in place by operation {holder}")


async def unlock(p: ProtectionContext, app_id: str, op_id: str) -> None:
    """Release the lock if this operation holds it."""
    await (await p.lock_store()).release(app_id, op_id)


async def app_workloads(p: ProtectionContext, app_id: str) -> list[KubeObject]:
    """The app's workloads as discovery last saw them (empty when it does not know it)."""
    entry = await p.inventory.get(f"apps.{app_id}")
    if entry is None:
        return []
    app = AppRecord.model_validate_json(entry.value)
    return [
        {
            "apiVersion": ref.api_version,
            "kind": ref.kind,
            "metadata": {"name": ref.name, "namespace": ref.namespace},
        }
        for ref in app.workloads
    ]


def doomed(plan: RestorePlan, running: list[KubeObject]) -> list[KubeObject]:
    """Workloads (the app's and the backup's) and the backup's claims, each once."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    claims = [o for o in plan.objects if o.get("kind") == "PersistentVolumeClaim"]
    for obj in [*running, *(o for o in plan.objects if plan.after_data(o)), *claims]:
        meta = obj["metadata"]
        key = (obj["kind"], str(meta.get("namespace") or ""), meta["name"])
        if key not in seen:
            seen.add(key)
            out.append(obj)
    return out


async def clear(
    p: ProtectionContext,
    kube: KubeApi,
    app_id: str,
    plan: RestorePlan,
    patience: float = GONE_TIMEOUT,
) -> int:
    """Delete what the restore replaces and wait until it is gone (the count); InPlaceError
    when something is still there after `patience` seconds (a claim still in use, a finalizer)."""
    targets = doomed(plan, await app_workloads(p, app_id))
    for obj in targets:
        meta = obj["metadata"]
        try:
            await kube.delete(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        except KubeError as exc:
            raise InPlaceError(f"cannot delete {describe(obj)}: {exc}") from exc
    deadline = time.monotonic() + patience
    for obj in targets:
        meta = obj["metadata"]
        while await kube.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace")):
            if time.monotonic() > deadline:
                raise InPlaceError(f"{describe(obj)} is still there {patience:.0f} s after delete")
            await asyncio.sleep(POLL)
    return len(targets)
