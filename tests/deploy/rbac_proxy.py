"""An authorizing proxy in front of the Kubernetes API emulator, enforcing the chart's RBAC.

The emulator authenticates but does not authorize. This proxy maps each request to what
the API server's RBAC authorizer checks (verb, API group, resource[/subresource],
namespace), allows it only when the rendered chart grants it to the service account it
stands for, and otherwise answers 403 Forbidden as the API server does. Service code
talking to it through `KubeCluster` then fails exactly where the chart's RBAC would fail
it in a real cluster. Non-resource paths (API discovery, /version, /openapi) are allowed,
as every authenticated user may read them. `pods/exec` streams (WebSocket) are forwarded
too; they need both `get` (what API servers before 1.35 check for the upgrade) and
`create` (what newer ones check).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientWebSocketResponse, TCPConnector, WSMsgType, web

from tests.deploy.chart_support import NAMESPACE, PREFIX, Rendering

Permission = tuple[str, str, str]
"""(API group, resource, verb)."""
FORWARDED = ("Authorization", "Content-Type", "Accept")


@dataclass(frozen=True)
class Access:
    verb: str
    group: str
    resource: str
    namespace: str | None


def access_of(method: str, path: str, query: dict[str, str]) -> Access | None:
    """What RBAC checks for this request; None for a non-resource path."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, rest = "", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        return None
    if not rest:
        return None  # discovery of a group version
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource, named = rest[0], len(rest) > 1
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    if method == "GET":
        verb = "get" if named else ("watch" if query.get("watch") in ("1", "true") else "list")
    elif method == "DELETE":
        verb = "delete" if named else "deletecollection"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}[method]
    return Access(verb, group, resource, namespace)


def _permissions(rules: list[dict[str, Any]]) -> set[Permission]:
    return {
        (g, r, v)
        for rule in rules
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }


@dataclass
class Grants:
    """What one service account may do: everywhere, and in the release namespace."""

    cluster_wide: set[Permission] = field(default_factory=set)
    release_namespace: set[Permission] = field(default_factory=set)

    def allows(self, access: Access) -> bool:
        wanted = (access.group, access.resource, access.verb)
        if wanted in self.cluster_wide:
            return True
        return access.namespace == NAMESPACE and wanted in self.release_namespace


def grants_of(rendering: Rendering, component: str) -> Grants:
    roles = {
        (o["kind"], o["metadata"]["name"]): o
        for o in rendering.of_kind("ClusterRole") + rendering.of_kind("Role")
    }
    grants = Grants()
    for binding in rendering.of_kind("ClusterRoleBinding") + rendering.of_kind("RoleBinding"):
        if not any(s["name"] == f"{PREFIX}{component}" for s in binding["subjects"]):
            continue
        ref = binding["roleRef"]
        rules = _permissions(roles[(ref["kind"], ref["name"])]["rules"])
        if binding["kind"] == "ClusterRoleBinding":
            grants.cluster_wide |= rules
        else:
            grants.release_namespace |= rules
    return grants


class AuthorizingProxy:
    """Serves on 127.0.0.1 (a random port) for one service account, forwarding to `upstream`."""

    def __init__(
        self, upstream: str, grants: Grants, upstream_ssl: ssl.SSLContext | None = None
    ) -> None:
        """`upstream_ssl`: trust for an HTTPS upstream (the emulator's own CA); the proxy
        itself serves plain HTTP."""
        self.upstream, self.grants = upstream.rstrip("/"), grants
        self._upstream_ssl = upstream_ssl
        self.denied: list[Access] = []
        self.allowed: list[Access] = []
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._session = ClientSession(connector=TCPConnector(ssl=self._upstream_ssl or True))

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def kubeconfig(self, emulator_kubeconfig: Path, target: Path) -> Path:
        """The emulator's kubeconfig (its token), pointed at this proxy (plain HTTP, where
        the emulator's CA is unused)."""
        config = json.loads(emulator_kubeconfig.read_text(encoding="utf-8"))
        config["clusters"][0]["cluster"]["server"] = self.url
        target.write_text(json.dumps(config), encoding="utf-8")
        return target

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        access = access_of(request.method, request.path, dict(request.query))
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        checks = [access] if access is not None else []
        if access is not None and upgrade:
            checks.append(Access("create", access.group, access.resource, access.namespace))
        for check in checks:
            if not self.grants.allows(check):
                self.denied.append(check)
                return self._forbidden(check)
            self.allowed.append(check)
        assert self._session is not None
        headers = {k: request.headers[k] for k in FORWARDED if k in request.headers}
        if upgrade:
            return await self._stream(request, headers)
        async with self._session.request(
            request.method,
            f"{self.upstream}{request.path_qs}",
            headers=headers,
            data=await request.read(),
        ) as upstream:
            body = await upstream.read()
            return web.Response(
                status=upstream.status,
                body=body,
                headers={"Content-Type": upstream.headers.get("Content-Type", "")},
            )

    async def _stream(self, request: web.Request, headers: dict[str, str]) -> web.StreamResponse:
        assert self._session is not None
        protocols = [
            p.strip()
            for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip()
        ]
        upstream = await self._session.ws_connect(
            f"{self.upstream.replace('http', 'ws', 1)}{request.path_qs}",
            protocols=protocols,
            headers={k: v for k, v in headers.items() if k == "Authorization"},
        )
        downstream = web.WebSocketResponse(protocols=[upstream.protocol or ""])
        await downstream.prepare(request)

        async def copy(
            source: web.WebSocketResponse | ClientWebSocketResponse,
            target: web.WebSocketResponse | ClientWebSocketResponse,
        ) -> None:
            async for message in source:
                if message.type == WSMsgType.BINARY:
                    await target.send_bytes(message.data)
                elif message.type == WSMsgType.TEXT:
                    await target.send_str(message.data)
            await target.close()

        await asyncio.gather(copy(upstream, downstream), copy(downstream, upstream))
        return downstream

    @staticmethod
    def _forbidden(access: Access) -> web.Response:
        where = f" in the namespace {access.namespace}" if access.namespace else ""
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": "Forbidden",
            "code": 403,
            "message": f"cannot {access.verb} resource {access.resource!r} in API group "
            f"{access.group!r}{where}",
        }
        return web.json_response(status, status=403)
