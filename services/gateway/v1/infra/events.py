"""EventService (`WatchEvents`): Vessel's events through the gateway, under the API's access rules.

The bus carries every event of every namespace; holding NATS credentials is an
integration path for administrators. Through the gateway a caller sees only the events
about what its scope covers. An event's targets are read from its payload (an app, an app
id, a cluster and namespace, a restore's target) and, for a token with namespace limits,
an event that names a cluster but no namespace is out of scope: it may be about any of
them. Events that name nothing (buckets, dead letters) reach unscoped callers only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any

from google.protobuf.struct_pb2 import Struct

from services.gateway.auth import authz
from services.gateway.auth.authz import Principal, Target
from services.gateway.context import GatewayContext
from services.gateway.errors import ApiError, RpcContext, invalid
from services.gateway.v1.common import timestamp
from vessel.api.v1 import infra_pb2 as ipb
from vessel.api.v1 import infra_pb2_grpc as irpc
from vessel.contracts import subjects
from vessel.contracts.envelope import CloudEvent

MAX_TYPES = 32
EVERY_EVENT = subjects.EVENT_SUBJECTS


def event_targets(data: dict[str, Any]) -> list[Target]:
    """What an event is about, in scope terms; [("", None)] when it names nothing."""
    targets: list[Target] = []
    app = data.get("app")
    if isinstance(app, dict) and isinstance(app.get("cluster"), str):
        extra = [n for n in app.get("namespaces") or [] if isinstance(n, str)]
        namespaces = [app.get("namespace"), *extra]
        targets += [(app["cluster"], n) for n in namespaces if isinstance(n, str)]
    if isinstance(data.get("app_id"), str):
        targets += authz.app_id_target(data["app_id"])
    cluster, namespace = data.get("cluster"), data.get("namespace")
    if isinstance(cluster, dict):  # a cluster record (discovery's cluster events)
        cluster = cluster.get("id")
    if isinstance(cluster, str) and cluster:
        targets.append((cluster, namespace if isinstance(namespace, str) else None))
    if isinstance(data.get("target_cluster"), str) and data["target_cluster"]:
        mapping = data.get("namespace_mapping") or {}
        sources = [ns for _, ns in targets if ns is not None]
        mapped = {str(k): str(v) for k, v in mapping.items()} if isinstance(mapping, dict) else {}
        targets += authz.restore_targets(data["target_cluster"], mapped, sources)
    return list(dict.fromkeys(targets)) or [("", None)]


def sees(principal: Principal, event: CloudEvent) -> bool:
    for cluster, namespace in event_targets(event.data):
        if principal.clusters and cluster not in principal.clusters:
            return False
        if principal.namespaces and (namespace is None or namespace not in principal.namespaces):
            return False
    return True


def event_message(event: CloudEvent) -> ipb.Event:
    data = Struct()
    data.update(event.data)
    return ipb.Event(
        id=event.id,
        type=event.type,
        source=event.source,
        subject=event.subject or "",
        time=timestamp(event.time),
        data=data,
    )


class EventService(irpc.EventServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def WatchEvents(
        self, request: ipb.WatchEventsRequest, context: RpcContext
    ) -> AsyncIterator[ipb.Event]:
        try:
            principal = authz.current()
            problems = []
            if len(request.types) > MAX_TYPES:
                problems.append(("types", f"at most {MAX_TYPES} type prefixes"))
            if request.max_events < 0:
                problems.append(("max_events", "must not be negative"))
            if problems:
                raise invalid(problems)
        except ApiError as exc:
            await context.abort_with_status(exc.status())
            return
        since = request.since.ToDatetime(tzinfo=UTC) if request.HasField("since") else None
        sent = 0
        async for _, event in self.ctx.bus.tail(EVERY_EVENT, since=since):
            if request.types and not any(event.type.startswith(t) for t in request.types):
                continue
            if not sees(principal, event):
                continue
            yield event_message(event)
            sent += 1
            if request.max_events and sent >= request.max_events:
                return
