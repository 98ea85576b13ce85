"""Would a restore be accepted? The checks a restore runs before it writes anything, served
also as the `vessel.query.protection.restore.preflight` query so the gateway can reject a
bad request at once, with the field at fault.

The checks only read: the backup catalog and resource archive from the bucket, and the
target cluster's StorageClasses and the objects the plan would write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from pydantic import ValidationError

from services.protection import catalog_head
from services.protection.bucket_catalog import (
    Backup,
    BackupCatalog,
    CatalogError,
    UnsealedBackup,
    read_backup,
)
from services.protection.context import ProtectionContext
from services.protection.restore_apply import existing, never_conflicts
from services.protection.restore_plan import (
    RestorePlan,
    TransformError,
    build_plan,
    describe,
)
from vessel.config import ConfigError
from vessel.contracts import queries
from vessel.contracts.events import QueryFailed
from vessel.contracts.protection import PreflightResult, PreflightViolation, RestorePreflight
from vessel.kube.objects import KubeObject
from vessel.kube.port import KubeApi
from vessel.objectstore.base import ObjectNotFound

log = logging.getLogger("vessel.protection.preflight")
Reason = Literal["invalid", "conflict", "not_found"]


@dataclass
class Preflight:
    """The checks' outcome; `backup` and `plan` are set when the backup could be read and
    planned, `existing` holds the plan's objects the target already has."""

    violations: list[PreflightViolation] = field(default_factory=list)
    backup: Backup | None = None
    plan: RestorePlan | None = None
    existing: list[KubeObject] = field(default_factory=list)

    def add(self, field_: str, reason: Reason, message: str) -> None:
        self.violations.append(PreflightViolation(field=field_, reason=reason, message=message))

    @property
    def ok(self) -> bool:
        return not self.violations

    def result(self) -> PreflightResult:
        return PreflightResult(ok=self.ok, violations=self.violations)

    def summary(self) -> str:
        return "; ".join(f"{v.field}: {v.message}" for v in self.violations)


async def preflight(p: ProtectionContext, req: RestorePreflight) -> Preflight:
    """Every check of `req`, collecting all violations rather than stopping at the first."""
    out = Preflight()
    options = req.options
    if options.in_place and not options.confirm:
        out.add(
            "options.confirm",
            "invalid",
            "an in-place restore deletes the app's workloads and claims first: "
            "set options.confirm to go ahead",
        )
    kube = await p.clusters.kube(req.target_cluster)
    if kube is None:
        out.add("target_cluster", "not_found", f"cluster {req.target_cluster!r} is not registered")
    await _read_backup(p, req, out)
    if out.backup is None:
        return out
    if options.in_place:
        if req.target_cluster != out.backup.cluster:
            out.add(
                "target_cluster",
                "invalid",
                f"an in-place restore goes back to the backup's cluster "
                f"{out.backup.cluster!r}, not {req.target_cluster!r}",
            )
        if req.namespace_mapping:
            out.add("namespace_mapping", "invalid", "an in-place restore maps no namespaces")
    if out.plan is None or kube is None:
        return out
    await _check_storage_classes(kube, req, out.plan, out)
    if not options.in_place:  # in place, existing objects are replaced by design
        await _check_existing(kube, req, out.plan, out)
    return out


async def _read_backup(p: ProtectionContext, req: RestorePreflight, out: Preflight) -> None:
    try:
        trust = req.options.trust_unsealed
        backup, objects = await p.in_bucket(
            req.bucket, lambda s: read_backup(s, req.backup_id, trust)
        )
    except ConfigError as exc:
        out.add("bucket", "not_found", str(exc))
        return
    except ObjectNotFound:
        out.add(
            "backup_id",
            "not_found",
            f"backup {req.backup_id} is not in bucket {req.bucket} (or is incomplete)",
        )
        return
    except UnsealedBackup as exc:
        out.add(
            "options.trust_unsealed",
            "invalid",
            f"{exc}; restore it only if you trust everyone who could write the bucket, "
            "with options.trust_unsealed (admin)",
        )
        return
    except CatalogError as exc:
        out.add("backup_id", "invalid", f"backup {req.backup_id} failed verification: {exc}")
        return
    if isinstance(backup, BackupCatalog):  # a trusted unsealed backup has no head to check
        try:
            await catalog_head.verify(p, req.bucket, req.backup_id)
        except CatalogError as exc:
            out.add("backup_id", "invalid", f"backup {req.backup_id} failed verification: {exc}")
            return
    out.backup = backup
    try:
        out.plan = build_plan(objects, dict(req.namespace_mapping), req.options)
    except TransformError as exc:
        for index, why in exc.failures:
            out.add(f"options.transforms[{index}]", "invalid", why)


async def _check_storage_classes(
    kube: KubeApi, req: RestorePreflight, plan: RestorePlan, out: Preflight
) -> None:
    claims_by_class: dict[str, list[str]] = {}
    for target in plan.claims.values():
        if target.storage_class:  # none: the cluster's default class decides
            claims_by_class.setdefault(target.storage_class, []).append(
                f"{target.namespace}/{target.name}"
            )
    for name, claims in sorted(claims_by_class.items()):
        if await kube.get("storage.k8s.io/v1", "StorageClass", name) is None:
            out.add(
                "options.storage_class_mapping",
                "invalid",
                f"StorageClass {name!r} (for claims {', '.join(claims)}) does not exist in "
                f"cluster {req.target_cluster}",
            )


async def _check_existing(
    kube: KubeApi, req: RestorePreflight, plan: RestorePlan, out: Preflight
) -> None:
    # Claims are always looked up: an existing claim keeps its volume, so it is not filled.
    if req.options.existing == "fail":
        candidates = [o for o in plan.objects if not never_conflicts(o)]
    else:
        candidates = [o for o in plan.objects if o.get("kind") == "PersistentVolumeClaim"]
    out.existing = await existing(kube, candidates)
    if req.options.existing == "fail" and out.existing:
        out.add(
            "options.existing",
            "conflict",
            f"{len(out.existing)} objects exist in cluster {req.target_cluster}: "
            + ", ".join(describe(o) for o in out.existing),
        )


async def answer(p: ProtectionContext, body: bytes) -> bytes:
    """The encoded reply to one preflight request."""
    reply: PreflightResult | QueryFailed
    try:
        req = RestorePreflight.model_validate_json(body.strip() or b"{}")
    except ValidationError as exc:
        return QueryFailed.invalid(queries.QUERY_RESTORE_PREFLIGHT, exc).model_dump_json().encode()
    try:
        reply = (await preflight(p, req)).result()
    except Exception as exc:  # the requester gets the reason instead of a timeout
        log.warning("preflight of backup %s failed: %s", req.backup_id, exc)
        reply = QueryFailed(error=f"preflight of backup {req.backup_id}: {exc}")
    return reply.model_dump_json().encode()


class PreflightQueries:
    """The handler of `vessel.query.protection.restore.preflight` requests."""

    def __init__(self, p: ProtectionContext) -> None:
        self.p = p

    async def on_request(self, subject: str, body: bytes) -> bytes:
        return await answer(self.p, body)
