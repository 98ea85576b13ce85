"""An HTTP proxy in front of an emulated API server, for what the emulator cannot do itself:
refuse chosen resources with 403 Forbidden (RBAC), go away and come back on the same
address, and drop every open connection (watches included). It also counts list and
watch requests per resource, so tests can tell a resumed watch from a relist."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import ssl
from collections import Counter
from typing import Any

import aiohttp
from aiohttp import web

_HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


def resource_of(path: str) -> str:
    """The plural resource a request path addresses ("" for discovery documents)."""
    parts = [p for p in path.split("/") if p]
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:] if parts[:1] == ["apis"] else []
    if len(rest) >= 3 and rest[0] == "namespaces":
        return rest[2]
    return rest[0] if rest else ""


class KubeProxy:
    def __init__(self, upstream: str, upstream_ssl: ssl.SSLContext | None = None) -> None:
        """`upstream_ssl`: trust for an HTTPS upstream (the emulator's own CA); the proxy
        itself serves plain HTTP."""
        self.upstream = upstream.rstrip("/")
        self._upstream_ssl = upstream_ssl
        self.forbidden: set[str] = set()
        self.lists: Counter[str] = Counter()
        self.watches: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._session: aiohttp.ClientSession | None = None
        self._open: set[asyncio.Task[Any]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> str:
        with socket.socket() as probe:  # a free port, kept across down() and up()
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        connector = aiohttp.TCPConnector(ssl=self._upstream_ssl or True)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None)
        )
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        await self.up()
        return self.url

    async def up(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()

    async def down(self) -> None:
        """Stop listening and drop every connection: the server is unreachable."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        await self.sever()

    async def sever(self) -> None:
        """Drop every open request (watches included), as a broken network would."""
        for task in list(self._open):
            task.cancel()
        await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.down()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        resource = resource_of(request.path)
        if resource in self.forbidden:
            message = f'{resource} is forbidden: User "vessel" cannot list resource "{resource}"'
            body: dict[str, Any] = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
            }
            body |= {"message": message, "reason": "Forbidden", "code": 403}
            return web.json_response(body, status=403)
        if request.method == "GET" and resource:
            watching = request.query.get("watch") in ("true", "1")
            (self.watches if watching else self.lists)[resource] += 1
        task = asyncio.current_task()
        assert task is not None and self._session is not None
        self._open.add(task)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
            async with self._session.request(
                request.method,
                self.upstream + request.path_qs,
                headers=headers,
                data=await request.read(),
            ) as upstream:
                response = web.StreamResponse(
                    status=upstream.status,
                    headers={"Content-Type": upstream.headers.get("Content-Type", "")},
                )
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                with contextlib.suppress(ConnectionResetError):
                    await response.write_eof()
                return response
        except asyncio.CancelledError:
            if request.transport is not None:
                request.transport.abort()
            raise
        finally:
            self._open.discard(task)


def kubeconfig_text(server: str, token: str, *, name: str = "c", ca: str | None = None) -> str:
    """A kubeconfig (JSON, which is YAML) for `server` with a bearer token; `ca`: the PEM
    certificate of the CA an HTTPS server's certificate is checked against."""
    cluster = {"server": server}
    if ca is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca.encode()).decode()
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": cluster}],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
        },
        indent=2,
    )
