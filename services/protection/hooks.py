"""Running execution hooks in an app's containers (pods/exec through the kube port).

`run_hooks` runs every hook of one stage, in hook id order, in every running pod of the
app (pods its workloads select; for an app grouped by label, also pods with its label)
and every container whose name and image match the hook. Each run is one `ItemResult`
(kind `hook`, name `<hook id>@<pod>/<container>`). Policy: a failed or timed-out run of
an `on_failure: fail` hook fails the stage; `continue` hooks are recorded only.

A pre-* stage stops at its first failing `fail` hook (the operation fails, so running
more pre-hooks would only change the app for nothing) and then unfreezes every
filesystem it froze, so a failed operation never leaves an app frozen. A post-* stage
runs everything, so every thaw and resume is attempted. After a successful pre-* stage
the frozen mounts are in `HookOutcome.frozen`: the flow runs the post-* stage (whose
fsfreeze hook thaws them) whether its snapshot succeeded or not, or calls `unfreeze`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from services.protection.hook_targets import (
    Container,
    app_pods,
    claim_mounts,
    matching_containers,
)
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.events import AppRecord
from vessel.contracts.hooks import ExecHook, HookFailed, HookStage
from vessel.contracts.protection import ItemResult, ItemState
from vessel.kube import errors
from vessel.kube.objects import KubeObject, name_of, namespace_of
from vessel.kube.port import KubeApi

log = logging.getLogger("vessel.protection.hooks")
TAIL = 2000
"""Characters of stderr kept in item messages and `hook.failed` events."""
THAW_TIMEOUT = 30.0
FailReason = Literal["exit", "timeout", "error"]


@dataclass(frozen=True)
class FrozenMount:
    namespace: str
    pod: str
    container: str
    path: str
    hook_id: str


@dataclass
class HookOutcome:
    items: list[ItemResult] = field(default_factory=list)
    failed: bool = False
    """Some `on_failure: fail` hook failed or timed out."""
    failures: list[HookFailed] = field(default_factory=list)
    """Every failed run, `continue` ones too, ready to publish (`report`)."""
    frozen: list[FrozenMount] = field(default_factory=list)
    """Mounts a successful pre-* stage left frozen."""


@dataclass(frozen=True)
class _Run:
    """How a run ended: failure reason (None: success), exit code, stderr tail, message."""

    reason: FailReason | None
    exit_code: int | None
    stderr: str
    message: str
    skipped: bool = False


async def run_hooks(
    kube: KubeApi, app: AppRecord, hooks: list[ExecHook], stage: HookStage
) -> HookOutcome:
    outcome = HookOutcome()
    selected = sorted(
        (h for h in hooks if h.stage == stage and h.app_id == app.id), key=lambda h: h.id
    )
    if not selected:
        return outcome
    pods = await app_pods(kube, app)
    pre = stage.startswith("pre-")
    try:
        for hook in selected:
            for pod in pods:
                for container in matching_containers(hook, pod):
                    await _run_in(kube, app, hook, pod, container, outcome)
                    if pre and outcome.failed:
                        outcome.items += await unfreeze(kube, outcome.frozen)
                        outcome.frozen = []
                        return outcome
    except BaseException:
        # Cancelled or broken mid-stage: what was frozen must not stay frozen.
        if outcome.frozen:
            await asyncio.shield(unfreeze(kube, outcome.frozen))
        raise
    return outcome


async def unfreeze(kube: KubeApi, frozen: Iterable[FrozenMount]) -> list[ItemResult]:
    """Thaw mounts, newest first; one item per mount."""
    items = []
    for mount in reversed(list(frozen)):
        run = await _exec(
            kube,
            mount.namespace,
            mount.pod,
            mount.container,
            ["fsfreeze", "--unfreeze", mount.path],
            THAW_TIMEOUT,
        )
        if run.reason is not None:
            log.error(
                "could not unfreeze %s in %s/%s: %s",
                mount.path,
                mount.pod,
                mount.container,
                run.message,
            )
        items.append(
            ItemResult(
                kind="hook",
                name=f"{mount.hook_id}@{mount.pod}/{mount.container}",
                namespace=mount.namespace,
                state="Completed" if run.reason is None else "Failed",
                message=f"unfroze {mount.path} after a failed pre-hook"
                if run.reason is None
                else f"could not unfreeze {mount.path}: {run.message}",
            )
        )
    return items


async def report(bus: Bus, outcome: HookOutcome, operation_id: str = "") -> None:
    """Publish `protection.hook.failed` for every failed run of `outcome`."""
    for failure in outcome.failures:
        event = failure.model_copy(update={"operation_id": operation_id or failure.operation_id})
        await bus.publish(
            subjects.HOOK_FAILED,
            event,
            subject=f"/apps/{failure.app_id}/hooks/{failure.hook_id}",
        )


async def _run_in(
    kube: KubeApi,
    app: AppRecord,
    hook: ExecHook,
    pod: KubeObject,
    container: Container,
    outcome: HookOutcome,
) -> None:
    namespace, pod_name = namespace_of(pod), name_of(pod)
    name = container["name"]
    if hook.builtin == "fsfreeze":
        run = await _fsfreeze(kube, app, hook, pod, container, outcome)
    else:
        run = await _exec(kube, namespace, pod_name, name, hook.command, hook.timeout_seconds)
    state: ItemState = "Completed" if run.reason is None else "Failed"
    if run.skipped:
        state = "Skipped"
    outcome.items.append(
        ItemResult(
            kind="hook",
            name=f"{hook.id}@{pod_name}/{name}",
            namespace=namespace,
            state=state,
            message=run.message,
        )
    )
    if run.reason is None:
        return
    log.warning("hook %s failed in %s/%s/%s: %s", hook.id, namespace, pod_name, name, run.message)
    outcome.failures.append(
        HookFailed(
            app_id=hook.app_id,
            hook_id=hook.id,
            stage=hook.stage,
            namespace=namespace,
            pod=pod_name,
            container=name,
            reason=run.reason,
            exit_code=run.exit_code,
            stderr_tail=run.stderr,
            message=run.message[:TAIL],
            on_failure=hook.on_failure,
        )
    )
    if hook.on_failure == "fail":
        outcome.failed = True


async def _fsfreeze(
    kube: KubeApi,
    app: AppRecord,
    hook: ExecHook,
    pod: KubeObject,
    container: Container,
    outcome: HookOutcome,
) -> _Run:
    """Freeze (pre-*) or thaw (post-*) each claim mount; frozen ones go to `outcome`."""
    namespace, pod_name, name = namespace_of(pod), name_of(pod), container["name"]
    paths = claim_mounts(app, pod, container)
    if not paths:
        return _Run(None, None, "", "fsfreeze: the container mounts no claim of the app", True)
    freeze = hook.stage.startswith("pre-")
    done: list[str] = []
    for path in paths:
        argv = ["fsfreeze", "--freeze" if freeze else "--unfreeze", path]
        run = await _exec(kube, namespace, pod_name, name, argv, hook.timeout_seconds)
        if run.reason is not None:
            before = f"{'froze' if freeze else 'unfroze'} {', '.join(done)}; " if done else ""
            return _Run(run.reason, run.exit_code, run.stderr, before + run.message)
        done.append(path)
        if freeze:
            outcome.frozen.append(FrozenMount(namespace, pod_name, name, path, hook.id))
    return _Run(None, 0, "", f"{'froze' if freeze else 'unfroze'} {', '.join(done)}")


async def _exec(
    kube: KubeApi, namespace: str, pod: str, container: str, argv: list[str], seconds: float
) -> _Run:
    try:
        result = await kube.exec(namespace, pod, container, argv, seconds)
    except errors.ExecTimeout:
        return _Run("timeout", None, "", f"{argv[0]}: timed out after {seconds:g}s")
    except errors.KubeError as exc:
        return _Run("error", None, "", f"{argv[0]}: could not run: {exc}")
    tail = result.stderr[-TAIL:]
    if result.exit_code == 0:
        return _Run(None, 0, tail, "exit 0")
    detail = tail.strip()[-500:] or "(no stderr)"
    return _Run("exit", result.exit_code, tail, f"{argv[0]}: exit {result.exit_code}: {detail}")
