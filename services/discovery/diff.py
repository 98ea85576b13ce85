"""Compact diffs between two records of one app, for `app.changed`."""

from __future__ import annotations

from collections.abc import Iterable

from vessel.contracts.events import AppDiff, AppRecord
from vessel.contracts.models import ClaimInfo, ResourceRef, WorkloadStatus

ARROW = " -> "


def _names(refs: Iterable[ResourceRef], home: str) -> set[str]:
    """`Kind/name`, or `Kind/namespace/name` outside the app's own namespace."""
    return {
        f"{r.kind}/{r.name}" if r.namespace in (None, home) else f"{r.kind}/{r.namespace}/{r.name}"
        for r in refs
    }


def _workload(before: WorkloadStatus, after: WorkloadStatus) -> str:
    parts = []
    if (before.ready, before.desired) != (after.ready, after.desired):
        parts.append(f"ready {before.ready}/{before.desired}{ARROW}{after.ready}/{after.desired}")
    if before.images != after.images:
        parts.append(f"images {','.join(before.images)}{ARROW}{','.join(after.images)}")
    return "; ".join(parts)


def _claim(before: ClaimInfo, after: ClaimInfo) -> str:
    parts = []
    for field in ClaimInfo.model_fields:
        old, new = getattr(before, field), getattr(after, field)
        if old != new:
            parts.append(f"{field} {old}{ARROW}{new}")
    return "; ".join(parts)


def changed_fields(before: AppRecord, after: AppRecord) -> list[str]:
    return [f for f in AppRecord.model_fields if getattr(before, f) != getattr(after, f)]


def app_diff(before: AppRecord, after: AppRecord) -> AppDiff:
    home = after.namespace
    old_names = _names(before.resources, home) | _names(before.dependencies, home)
    new_names = _names(after.resources, home) | _names(after.dependencies, home)
    changed: dict[str, str] = {}
    if before.state != after.state:
        changed["state"] = f"{before.state}{ARROW}{after.state}"
    for field in ("grouping", "selector", "namespaces", "labels"):
        old, new = getattr(before, field), getattr(after, field)
        if old != new:
            changed[field] = f"{old}{ARROW}{new}"
    if before.helm != after.helm:
        changed["helm"] = f"{_release(before)}{ARROW}{_release(after)}"
    if before.reasons != after.reasons:
        gone = sorted(set(before.reasons) - set(after.reasons))
        new = sorted(set(after.reasons) - set(before.reasons))
        changed["reasons"] = f"{'; '.join(gone) or '-'}{ARROW}{'; '.join(new) or '-'}"
    old_workloads = {(w.kind, w.name): w for w in before.workload_status}
    for w in after.workload_status:
        prior = old_workloads.get((w.kind, w.name))
        text = _workload(prior, w) if prior is not None else ""
        if text:
            changed[f"{w.kind}/{w.name}"] = text
    old_claims = {c.name: c for c in before.claims}
    for c in after.claims:
        prior_claim = old_claims.get(c.name)
        text = _claim(prior_claim, c) if prior_claim is not None else ""
        if text:
            changed[f"PersistentVolumeClaim/{c.name}"] = text
    return AppDiff(
        added=sorted(new_names - old_names), removed=sorted(old_names - new_names), changed=changed
    )


def _release(app: AppRecord) -> str:
    r = app.helm
    if r is None:
        return "-"
    return f"{r.chart}-{r.chart_version} rev {r.revision} {r.status}"
