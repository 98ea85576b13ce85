"""An app's hooks of one stage, run inside an operation: read from the hook store, their
per-container outcomes added to the operation's items, failures announced.

Post-restore hooks are the source app's (hooks are defined per app), run in the restored
copy: `restored_app` describes that copy from the objects the restore wrote.
"""

from __future__ import annotations

from services.protection.context import ProtectionContext
from services.protection.hooks import HookOutcome, report, run_hooks
from services.protection.resources import is_workload
from vessel.contracts.events import AppRecord
from vessel.contracts.hooks import HookStage
from vessel.contracts.models import ClaimInfo, ResourceRef
from vessel.contracts.operations import Operation
from vessel.kube.objects import ClaimView, KubeObject


async def run_stage(
    p: ProtectionContext, op_id: str, app: AppRecord, stage: HookStage, hooks_of: str = ""
) -> HookOutcome:
    """Run the hooks of `hooks_of` (default: the app's own) of `stage` in `app`."""
    hooks = await (await p.hook_store()).for_app(hooks_of or app.id, stage)
    if not hooks:
        return HookOutcome()
    hooks = [h.model_copy(update={"app_id": app.id}) for h in hooks]  # run in `app`
    ran = await run_hooks(await p.cluster(app.cluster), app, hooks, stage)
    await report(p.bus, ran, op_id)

    def record(o: Operation) -> None:
        o.items = [*o.items, *ran.items]

    await p.operations.change(op_id, record)
    return ran


def restored_app(
    app_id: str, cluster: str, mapping: dict[str, str], objects: list[KubeObject]
) -> AppRecord:
    """The restored copy of app `app_id` in `cluster`, from the objects written there."""
    _, namespace, name = app_id.split(".", 2)

    def ref(obj: KubeObject) -> ResourceRef:
        meta = obj["metadata"]
        return ResourceRef(
            api_version=obj["apiVersion"],
            kind=obj["kind"],
            name=meta["name"],
            namespace=meta.get("namespace"),
        )

    claims = [ClaimView(o) for o in objects if o.get("kind") == "PersistentVolumeClaim"]
    namespaces = {str(o["metadata"].get("namespace") or "") for o in objects} - {""}
    return AppRecord(
        cluster=cluster,
        namespace=mapping.get(namespace, namespace),
        name=name,
        grouping="user",
        state="Available",
        workloads=[ref(o) for o in objects if is_workload(o)],
        claims=[ClaimInfo(name=c.name, requested_bytes=0) for c in claims],
        namespaces=sorted(namespaces),
    )
