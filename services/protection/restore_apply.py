"""Writing a restore plan's objects into a cluster under the existing-resource policy.

Each object gets an outcome (`ItemResult`) instead of stopping the restore: one object the
cluster refuses should not leave the rest of the app unrestored. Namespaces are only ever
ensured (an existing namespace is where a restore lands, never a conflict), and an
existing claim is never replaced: its volume holds data the restore must not touch.
"""

from __future__ import annotations

import copy
from typing import Literal

from services.protection.restore_plan import describe
from vessel.contracts.protection import ItemResult, ItemState
from vessel.kube.errors import AlreadyExists, Conflict, KubeError
from vessel.kube.objects import KubeObject
from vessel.kube.port import KubeApi

Policy = Literal["skip", "update", "fail"]
REPLACE_ATTEMPTS = 3


def item(obj: KubeObject, state: ItemState, message: str = "") -> ItemResult:
    meta = obj.get("metadata") or {}
    return ItemResult(
        kind=str(obj.get("kind") or "?"),
        api_version=str(obj.get("apiVersion") or ""),
        name=str(meta.get("name") or "?"),
        namespace=str(meta.get("namespace") or ""),
        state=state,
        message=message,
    )


def never_conflicts(obj: KubeObject) -> bool:
    return obj.get("kind") == "Namespace"


async def existing(kube: KubeApi, objects: list[KubeObject]) -> list[KubeObject]:
    """Those of `objects` the cluster already holds."""
    found = []
    for obj in objects:
        meta = obj["metadata"]
        current = await kube.get(
            obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace")
        )
        if current is not None:
            found.append(obj)
    return found


async def apply(kube: KubeApi, obj: KubeObject, policy: Policy) -> ItemResult:
    """Create `obj`; when it exists, skip it, replace it or fail it as `policy` says."""
    try:
        await kube.create(obj)
        return item(obj, "Completed", "created")
    except AlreadyExists:
        pass
    except KubeError as exc:
        return item(obj, "Failed", str(exc))
    if never_conflicts(obj) or policy == "skip":
        return item(obj, "Skipped", "exists; left as it is")
    if policy == "fail":
        return item(obj, "Failed", "created by someone else while the restore ran")
    if obj.get("kind") == "PersistentVolumeClaim":
        return item(obj, "Skipped", "claim exists; it and its volume are left as they are")
    return await replace(kube, obj)


async def replace(kube: KubeApi, obj: KubeObject) -> ItemResult:
    """PUT the backup's version over the stored one, retrying when it changes under us."""
    meta = obj["metadata"]
    for _ in range(REPLACE_ATTEMPTS):
        try:
            current = await kube.get(
                obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace")
            )
            if current is None:
                await kube.create(obj)
                return item(obj, "Completed", "created")
            body = copy.deepcopy(obj)
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            await kube.replace(body)
            return item(obj, "Completed", "replaced with the backup's version")
        except (Conflict, AlreadyExists):
            continue  # changed (or recreated) since we read it: read again
        except KubeError as exc:
            return item(obj, "Failed", str(exc))
    return item(
        obj, "Failed", f"{describe(obj)} kept changing; not replaced after {REPLACE_ATTEMPTS} tries"
    )


async def apply_all(kube: KubeApi, objects: list[KubeObject], policy: Policy) -> list[ItemResult]:
    return [await apply(kube, obj, policy) for obj in objects]
