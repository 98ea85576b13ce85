"""Who is calling and what they may touch: roles, scopes and the checks every RPC runs.

Roles, as in Astra Control Center, each including the one before:
- viewer: read apps, operations;
- member: viewer + create backups, restores and other operations;
- owner: member + manage app definitions;
- admin: everything, including tokens, backends and clusters.

A scope is a set of clusters and a set of namespaces; an empty set allows all. A request
touches (cluster, namespace) pairs; it is allowed when every pair is in scope. Admins are
never scoped (a scoped admin could issue itself an unscoped token).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import IntEnum

import grpc

from services.gateway.errors import ApiError
from vessel.contracts.events import AppRecord
from vessel.contracts.operations import Operation


class Role(IntEnum):
    VIEWER = 1
    MEMBER = 2
    OWNER = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role | None:
        return cls.__members__.get(text.upper())


Target = tuple[str, str | None]
"""(cluster, namespace); namespace None: the cluster as a whole is not touched, only named."""


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    clusters: frozenset[str] = field(default_factory=frozenset)
    namespaces: frozenset[str] = field(default_factory=frozenset)

    @property
    def scoped(self) -> bool:
        return bool(self.clusters or self.namespaces)

    def covers(self, cluster: str, namespace: str | None) -> bool:
        if self.clusters and cluster not in self.clusters:
            return False
        return not (self.namespaces and namespace is not None and namespace not in self.namespaces)

    def describe_scope(self) -> str:
        clusters = ",".join(sorted(self.clusters)) or "all"
        namespaces = ",".join(sorted(self.namespaces)) or "all"
        return f"clusters {clusters}; namespaces {namespaces}"


ANONYMOUS = Principal("anonymous", Role.ADMIN)
"""The caller in open mode (no credentials configured and `gateway_auth.required` false)."""

_current: ContextVar[Principal] = ContextVar("vessel_gateway_principal")


def bind(principal: Principal) -> None:
    """Set by the interceptor before the servicer runs, in the same task."""
    _current.set(principal)


def current() -> Principal:
    try:
        return _current.get()
    except LookupError:
        # A servicer reached without the interceptor: refuse rather than run unchecked.
        raise ApiError(
            grpc.StatusCode.UNAUTHENTICATED, "no authenticated caller", reason="NO_PRINCIPAL"
        ) from None


def unauthenticated(message: str, reason: str) -> ApiError:
    return ApiError(grpc.StatusCode.UNAUTHENTICATED, message, reason=reason)


def require_role(principal: Principal, needed: Role, method: str) -> None:
    if principal.role >= needed:
        return
    raise ApiError(
        grpc.StatusCode.PERMISSION_DENIED,
        f"token {principal.name!r} has role {principal.role.label}; {method} needs role "
        f"{needed.label} or higher",
        reason="MISSING_ROLE",
        metadata={"required_role": needed.label, "role": principal.role.label},
    )


def require_scope(principal: Principal, targets: Iterable[Target]) -> None:
    for cluster, namespace in targets:
        if principal.covers(cluster, namespace):
            continue
        where = f"cluster {cluster!r}" + (
            f" namespace {namespace!r}" if namespace is not None else ""
        )
        metadata = {"cluster": cluster, "scope": principal.describe_scope()}
        if namespace is not None:
            metadata["namespace"] = namespace
        raise ApiError(
            grpc.StatusCode.PERMISSION_DENIED,
            f"token {principal.name!r} is not scoped to {where} "
            f"(its scope: {principal.describe_scope()})",
            reason="OUT_OF_SCOPE",
            metadata=metadata,
        )


def app_id_target(app_id: str) -> list[Target]:
    """The (cluster, namespace) an app id names; none when it is not an app id (validation
    then rejects it: a valid id always splits this way, as neither part holds dots)."""
    parts = app_id.split(".", 2)
    return [(parts[0], parts[1])] if len(parts) == 3 else []


def app_targets(app: AppRecord) -> list[Target]:
    """Every namespace an app reads from (user-defined apps may span several)."""
    extra: list[str] = list(getattr(app, "namespaces", None) or [])
    return [(app.cluster, ns) for ns in dict.fromkeys([app.namespace, *extra])]


def restore_targets(
    target_cluster: str, mapping: dict[str, str], sources: Iterable[str] = ()
) -> list[Target]:
    """Namespaces a restore writes: each source namespace under its mapped name (unmapped:
    its own name), and every mapped target; only the cluster when nothing is known yet."""
    names = [mapping.get(ns, ns) for ns in sources] + list(mapping.values())
    if not names:
        return [(target_cluster, None)]
    return [(target_cluster, ns) for ns in dict.fromkeys(names)]


def operation_targets(op: Operation) -> list[Target]:
    """What an operation touched, as far as its record tells."""
    targets = app_id_target(op.app_id) if op.app_id else []
    if op.kind in ("restore", "restore-files", "clone", "migrate") and op.target_cluster:
        # A clone or migration also writes its app's namespace under its mapped name.
        copies = op.kind in ("clone", "migrate")
        sources = [ns for _, ns in targets if ns is not None] if copies else []
        targets += restore_targets(op.target_cluster, op.namespace_mapping, sources)
    if not targets:  # a record naming nothing in scope terms: only unscoped callers see it
        targets = [("", None)]
    return targets


def copy_targets(
    app_id: str, target_cluster: str, mapping: dict[str, str], sources: Iterable[str] = ()
) -> list[Target]:
    """What a clone or migration touches: the app it reads (its id's namespace and any
    `sources` beside it) and every namespace the copy writes in the target cluster."""
    read = app_id_target(app_id)
    cluster = read[0][0] if read else ""
    read += [(cluster, ns) for ns in sources]
    namespaces = [ns for _, ns in read if ns is not None]
    copies = restore_targets(target_cluster, mapping, namespaces)
    return list(dict.fromkeys([*read, *copies]))


def snapshot_targets(cluster: str, namespace: str) -> list[Target]:
    """What an app snapshot holds: its app's cluster and namespace."""
    return [(cluster, namespace)]


def backup_targets(cluster: str, namespaces: Iterable[str]) -> list[Target]:
    """What a backup holds, by its catalog; an unreadable catalog names nothing in scope
    terms, so only unscoped callers see it."""
    targets: list[Target] = [(cluster, ns) for ns in dict.fromkeys(namespaces)]
    return targets if cluster and targets else [("", None)]


def covers_all(principal: Principal, targets: Iterable[Target]) -> bool:
    return all(principal.covers(cluster, ns) for cluster, ns in targets)
