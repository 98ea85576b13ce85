"""BackendService: a cluster's backends and pools as its provisioner serves them, and the
admin's add/update/remove through the provisioner's commands.

A change is checked here first (the configuration's shape, a duplicate or unknown name),
then published, and the call waits for the provisioner's verdict: the event answering
its operation id (added/updated/removed, or rejected with the reason). A retry with the
same `request_id` publishes nothing and answers from that same event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Literal

import grpc
from google.protobuf.json_format import MessageToDict
from pydantic import ValidationError

from services.gateway.auth import authz
from services.gateway.context import GatewayContext
from services.gateway.errors import ApiError, RpcContext, guard, invalid, not_found
from services.gateway.operations import first_time, operation_id
from services.gateway.provisioners import ask, outcome
from services.gateway.reads import paging
from services.gateway.v1.infra.clusters import cluster_or_all
from services.gateway.v1.infra.convert import backend_message
from services.gateway.validation import DNS_LABEL, IDENTIFIER, Checker
from vessel.api.v1 import infra_pb2 as ipb
from vessel.api.v1 import infra_pb2_grpc as irpc
from vessel.config import BackendConfig
from vessel.contracts import queries, subjects
from vessel.contracts.commands import PutBackend, RemoveBackend
from vessel.contracts.infra_queries import BackendInfo, BackendList, BackendQuery
from vessel.contracts.operations import now

Action = Literal["add", "update", "remove"]
APPLY_SECONDS = 15.0
"""How long a backend change waits for the provisioner's verdict."""


def _integral(value: Any) -> Any:
    """JSON numbers arrive as floats in a Struct: whole ones are meant as integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def backend_config(request: ipb.PutBackendRequest) -> tuple[BackendConfig, dict[str, Any]]:
    """The backend configuration of the request, or INVALID_ARGUMENT naming each problem."""
    raw: dict[str, Any] = _integral(MessageToDict(request.backend))
    violations: list[tuple[str, str]] = []
    if not DNS_LABEL.match(request.cluster):
        violations.append(("cluster", f"{request.cluster!r} is not a cluster id (DNS label)"))
    if request.request_id and not IDENTIFIER.match(request.request_id):
        violations.append(("request_id", f"{request.request_id!r} is not an identifier"))
    try:
        config = BackendConfig.model_validate(raw)
    except ValidationError as exc:
        for e in exc.errors():
            where = ".".join(str(p) for p in e["loc"])
            violations.append((f"backend.{where}" if where else "backend", e["msg"]))
        raise invalid(violations) from None
    if violations:
        raise invalid(violations)
    return config, raw


class BackendService(irpc.BackendServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def _backends(self, cluster: str, name: str = "") -> list[BackendInfo]:
        reply = await ask(
            self.ctx.bus,
            cluster,
            queries.QUERY_PROVISIONER_BACKENDS,
            BackendQuery(name=name),
            BackendList,
        )
        return reply.backends

    @guard
    async def ListBackends(
        self, request: ipb.ListBackendsRequest, context: RpcContext
    ) -> ipb.ListBackendsResponse:
        size = paging.page_size(request.page_size)
        found = []
        for cluster in await cluster_or_all(self.ctx, request.cluster):
            found += [backend_message(cluster, b) for b in await self._backends(cluster)]
        page, token = paging.paginate(
            found, lambda b: f"{b.cluster}/{b.name}", size, request.page_token
        )
        return ipb.ListBackendsResponse(backends=page, next_page_token=token)

    @guard
    async def GetBackend(self, request: ipb.GetBackendRequest, context: RpcContext) -> ipb.Backend:
        check = Checker(self.ctx.settings)
        check.pattern("cluster", request.cluster, DNS_LABEL, "a cluster id (DNS label)")
        check.pattern("name", request.name, IDENTIFIER, "a backend name")
        if check.violations:
            raise invalid(check.violations)
        await cluster_or_all(self.ctx, request.cluster)
        found = await self._backends(request.cluster, request.name)
        if not found:
            raise not_found(f"backend {request.name} in cluster {request.cluster}")
        return backend_message(request.cluster, found[0])

    async def _names(self, cluster: str) -> set[str]:
        await cluster_or_all(self.ctx, cluster)
        return {b.name for b in await self._backends(cluster)}

    async def _apply(
        self,
        cluster: str,
        name: str,
        action: Action,
        request_id: str,
        precheck: Callable[[set[str]], None],
        publish: Callable[[str], Awaitable[None]],
    ) -> ipb.BackendChange:
        op_id = operation_id(f"backend-{action}", request_id)
        earlier = await self.ctx.requests.remembered("admin", op_id)
        if earlier is not None:
            since = datetime.fromisoformat(earlier.decode())
        else:
            precheck(await self._names(cluster))
            since = now() - timedelta(seconds=2)
            if await first_time(self.ctx, op_id, since.isoformat()):
                await publish(op_id)
        event = await outcome(self.ctx.bus, cluster, op_id, since, APPLY_SECONDS)
        rejected = event.type == subjects.BACKEND_REJECTED.type
        error = str(event.data.get("error", ""))
        if earlier is None:
            await self.ctx.activity.record(
                f"backend.{action}",
                f"cluster/{cluster}/backend/{name}",
                "Rejected" if rejected else "Succeeded",
                identity=authz.current().name,
                message=error,
                cluster=cluster,
                operation_id=op_id,
            )
        if rejected and action == "remove":
            raise ApiError(grpc.StatusCode.FAILED_PRECONDITION, error)
        if rejected:
            raise invalid([("backend", error)])
        return ipb.BackendChange(
            operation_id=op_id,
            cluster=cluster,
            name=name,
            action=action,
            pools=[str(p) for p in event.data.get("pools", [])],
        )

    async def _put(self, request: ipb.PutBackendRequest, action: Action) -> ipb.BackendChange:
        config, raw = backend_config(request)
        cluster, name = request.cluster, config.name

        def precheck(names: set[str]) -> None:
            if action == "add" and name in names:
                raise ApiError(
                    grpc.StatusCode.ALREADY_EXISTS,
                    f"cluster {cluster} has a backend {name} (use UpdateBackend to change it)",
                )
            if action == "update" and name not in names:
                raise not_found(f"backend {name} in cluster {cluster}")

        async def publish(op_id: str) -> None:
            message = subjects.ADD_BACKEND if action == "add" else subjects.UPDATE_BACKEND
            command = PutBackend(operation_id=op_id, backend=raw)
            await self.ctx.bus.publish(message, command, cluster=cluster)

        return await self._apply(cluster, name, action, request.request_id, precheck, publish)

    @guard
    async def AddBackend(
        self, request: ipb.PutBackendRequest, context: RpcContext
    ) -> ipb.BackendChange:
        return await self._put(request, "add")

    @guard
    async def UpdateBackend(
        self, request: ipb.PutBackendRequest, context: RpcContext
    ) -> ipb.BackendChange:
        return await self._put(request, "update")

    @guard
    async def RemoveBackend(
        self, request: ipb.RemoveBackendRequest, context: RpcContext
    ) -> ipb.BackendChange:
        check = Checker(self.ctx.settings)
        check.pattern("cluster", request.cluster, DNS_LABEL, "a cluster id (DNS label)")
        check.pattern("name", request.name, IDENTIFIER, "a backend name")
        check.pattern("request_id", request.request_id, IDENTIFIER, "an identifier", required=False)
        if check.violations:
            raise invalid(check.violations)
        cluster, name = request.cluster, request.name

        def precheck(names: set[str]) -> None:
            if name not in names:
                raise not_found(f"backend {name} in cluster {cluster}")

        async def publish(op_id: str) -> None:
            command = RemoveBackend(operation_id=op_id, name=name)
            await self.ctx.bus.publish(subjects.REMOVE_BACKEND, command, cluster=cluster)

        return await self._apply(cluster, name, "remove", request.request_id, precheck, publish)
