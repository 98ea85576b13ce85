"""What a restore that fails or is canceled leaves in its target cluster.

With `cleanup_on_failure` (the default) the objects the restore created are deleted, in the
reverse of the order it wrote them: claims before their namespaces, and with each claim
the half-filled volume the provisioner made for it. Objects that were there before (kept
or replaced under the existing-resource policy) are never deleted. In place, or with the
option off, nothing is deleted: each claim the restore created is annotated
`vessel.io/restore-incomplete` (the operation and why) and gets a Warning Event
`RestoreIncomplete`, so a half-filled volume is never taken for a restored one. The
operation's message ends with what was done.
"""

from __future__ import annotations

import logging

from services.protection.context import ProtectionContext
from vessel.contracts.operations import Operation
from vessel.contracts.protection import ItemResult, RestoreOptions
from vessel.kube.errors import KubeError, NotFound
from vessel.kube.objects import event_on
from vessel.kube.port import KubeApi

log = logging.getLogger("vessel.protection.restore")
INCOMPLETE = "vessel.io/restore-incomplete"
CLAIM = "PersistentVolumeClaim"


def created(op: Operation) -> list[ItemResult]:
    """The Kubernetes objects this restore created, in the order it wrote them."""
    return [i for i in op.items if i.state == "Completed" and i.message == "created"]


async def leave_nothing_half_done(p: ProtectionContext, op: Operation, why: str) -> str:
    """Delete or label what `op` (a restore that failed or was canceled) created; a
    sentence saying which, to end its message with (empty: it created nothing)."""
    for w in op.volumes:  # no claim of it is waited for any more
        await p.restore_waits.end(op.target_cluster, w.namespace, w.claim)
    made = created(op)
    if not made:
        return ""
    kube = await p.cluster(op.target_cluster)
    options = op.restore_options or RestoreOptions()
    if options.cleanup_on_failure and not options.in_place:
        return await _delete(kube, made)
    return await _label(kube, [i for i in made if i.kind == CLAIM], f"{op.id}: {why}")


async def _delete(kube: KubeApi, made: list[ItemResult]) -> str:
    failed = []
    for i in reversed(made):
        try:
            if not i.api_version:
                raise KubeError("recorded without its apiVersion")
            await kube.delete(i.api_version, i.kind, i.name, i.namespace or None)
        except NotFound:
            pass
        except KubeError as exc:
            failed.append(f"{i.kind} {i.namespace}/{i.name}: {exc}")
    if failed:
        log.warning("restore clean-up left %d objects: %s", len(failed), "; ".join(failed))
        return f"deleted what it created but {len(failed)}: " + "; ".join(failed)
    return f"deleted the {len(made)} objects it created"


async def _label(kube: KubeApi, claims: list[ItemResult], note: str) -> str:
    for i in claims:
        patch = {"metadata": {"annotations": {INCOMPLETE: note}}}
        try:
            claim = await kube.patch("v1", CLAIM, i.name, i.namespace, patch)
            message = f"restore {note}; this claim's volume may be incomplete"
            await kube.create(
                event_on(claim, "RestoreIncomplete", message, component="vessel-protection")
            )
        except KubeError as exc:
            log.warning("claim %s/%s not labelled incomplete: %s", i.namespace, i.name, exc)
    names = ", ".join(f"{i.namespace}/{i.name}" for i in claims)
    return f"kept what it created; claims annotated {INCOMPLETE}: {names or 'none'}"
