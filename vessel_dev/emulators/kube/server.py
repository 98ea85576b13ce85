"""HTTP front end: authentication, discovery documents and REST verbs over the store."""

from __future__ import annotations

import functools
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from vessel.kube.objects import KubeObject
from vessel_dev.emulators.kube import errors, kinds, openapi, tables
from vessel_dev.emulators.kube import exec as pod_exec
from vessel_dev.emulators.kube.errors import ApiError
from vessel_dev.emulators.kube.kinds import Kind
from vessel_dev.emulators.kube.listing import list_document, paginate
from vessel_dev.emulators.kube.patch import PATCH_TYPES, PatchError, apply_patch
from vessel_dev.emulators.kube.selectors import build_predicate
from vessel_dev.emulators.kube.store import Store
from vessel_dev.emulators.kube.watch import WatchRequest, serve_watch

_HEALTH_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
_TRUE = frozenset({"true", "1"})
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Target:
    kind: Kind
    namespace: str | None  # None: cluster-scoped kind, or a namespaced kind across namespaces
    name: str | None
    subresource: str | None


def json_response(body: KubeObject, status: int = 200) -> web.Response:
    payload = json.dumps(body, separators=(",", ":")).encode()
    return web.Response(body=payload, status=status, content_type="application/json")


def resolve(path: str) -> Target:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise errors.resource_not_found()
    namespace: str | None = None
    scoped = kinds.lookup(group, version, rest[2]) if len(rest) >= 3 else None
    if rest[0] == "namespaces" and scoped is not None and scoped.namespaced:
        kind, namespace, tail = scoped, rest[1], rest[3:]
    else:
        found = kinds.lookup(group, version, rest[0])
        if found is None:
            raise errors.resource_not_found()
        kind, tail = found, rest[1:]
    if len(tail) > 2 or (kind.namespaced and namespace is None and tail):
        raise errors.resource_not_found()
    subresource = tail[1] if len(tail) == 2 else None
    if subresource is not None and (subresource != "status" or not kind.has_status):
        raise errors.resource_not_found()
    return Target(kind, namespace, tail[0] if tail else None, subresource)


def discovery(path: str, host: str) -> KubeObject | None:
    """The discovery document for ``path``, or None when it is not a discovery path."""
    parts = [p for p in path.split("/") if p]
    document: KubeObject | None
    if parts == ["version"]:
        document = kinds.version_doc()
    elif parts == ["api"]:
        document = kinds.api_versions_doc(host)
    elif parts == ["apis"]:
        document = kinds.api_group_list_doc()
    elif len(parts) == 2 and parts[0] == "api":
        document = kinds.api_resource_list_doc("", parts[1])
    elif len(parts) == 2 and parts[0] == "apis":
        document = kinds.api_group_doc(parts[1])
    elif len(parts) == 3 and parts[0] == "apis":
        document = kinds.api_resource_list_doc(parts[1], parts[2])
    else:
        return None
    if document is None:
        raise errors.resource_not_found()
    return document


async def read_json(request: web.BaseRequest, *, optional: bool = False) -> Any:
    raw = await request.read()
    if not raw.strip() and optional:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise errors.bad_request(f"error decoding the request body as JSON: {exc}") from exc


class ApiServer:
    def __init__(
        self, store: Store, token: str, watch_backlog: int, allow_exec: bool = False
    ) -> None:
        self.store = store
        self._expected = f"Bearer {token}".encode()
        self._watch_backlog = watch_backlog
        self._exec = pod_exec.PodExec(store)
        self._allow_exec = allow_exec

    def application(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._exec.install(app)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            if request.path in _HEALTH_PATHS:
                return web.Response(text="ok")
            self._authenticate(request)
            if request.path == "/openapi/v2" and request.method == "GET":
                return _openapi(request)
            document = discovery(request.path, request.host)
            if document is not None:
                if request.method != "GET":
                    raise errors.method_not_allowed(request.method)
                return json_response(document)
            if (exec_target := pod_exec.match(request.path)) is not None:
                if not self._allow_exec:
                    raise errors.ApiError(
                        403, "Forbidden", "pods/exec is disabled in this emulator (allow_exec)"
                    )
                return await self._exec.serve(request, *exec_target)
            return await self._dispatch(request, resolve(request.path))
        except ApiError as err:
            return json_response(err.status(), err.code)
        except Exception as exc:
            # An emulator bug must still reach the client as a Status it can parse.
            log.exception("unhandled error serving %s %s", request.method, request.path)
            return json_response(errors.internal(repr(exc)).status(), 500)

    def _authenticate(self, request: web.BaseRequest) -> None:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, self._expected):
            raise errors.unauthorized()

    async def _dispatch(self, request: web.Request, target: Target) -> web.StreamResponse:
        method = request.method
        if target.name is None:
            if method == "GET":
                return await self._collection(request, target)
            if method == "POST" and (target.namespace is not None or not target.kind.namespaced):
                return await self._create(request, target)
            raise errors.method_not_allowed(method)
        handlers = {
            "GET": self._get,
            "PUT": self._replace,
            "PATCH": self._patch,
            "DELETE": self._delete,
        }
        if method not in handlers:
            raise errors.method_not_allowed(method)
        return await handlers[method](request, target, target.name)

    async def _collection(self, request: web.Request, target: Target) -> web.StreamResponse:
        query = request.query
        table = tables.requested(request.headers.get("Accept", ""), query)
        label_selector = query.get("labelSelector", "")
        field_selector = query.get("fieldSelector", "")
        predicate = build_predicate(
            target.namespace, label_selector, field_selector, target.kind.plural
        )
        if query.get("watch", "").lower() in _TRUE:
            timeout = query.get("timeoutSeconds")
            watch = WatchRequest(
                target.kind,
                predicate,
                query.get("resourceVersion", ""),
                float(timeout) if timeout and timeout.isdigit() else None,
                query.get("allowWatchBookmarks", "").lower() in _TRUE,
                None if table is None else functools.partial(table.of_object, target.kind),
            )
            return await serve_watch(request, self.store, watch, self._watch_backlog)
        limit = query.get("limit", "0")
        page = paginate(
            self.store.iter(target.kind, predicate),
            self.store.rv,
            int(limit) if limit.isdigit() else 0,
            query.get("continue", ""),
            count_remaining=not (label_selector or field_selector),
        )
        document = list_document(target.kind, page)
        if table is not None:
            document = table.of_list(target.kind, page.items, document["metadata"])
        return json_response(document)

    async def _get(self, request: web.Request, target: Target, name: str) -> web.StreamResponse:
        obj = self.store.get(target.kind, target.namespace or "", name)
        table = tables.requested(request.headers.get("Accept", ""), request.query)
        return json_response(obj if table is None else table.of_object(target.kind, obj))

    async def _create(self, request: web.Request, target: Target) -> web.StreamResponse:
        if target.subresource is not None:
            raise errors.method_not_allowed(request.method)
        body = await read_json(request)
        created = self.store.create(
            target.kind, target.namespace or "", body, dry_run=_dry_run(request)
        )
        return json_response(created, 201)

    async def _replace(self, request: web.Request, target: Target, name: str) -> web.StreamResponse:
        body = await read_json(request)
        updated = self.store.replace(
            target.kind,
            target.namespace or "",
            name,
            body,
            status_only=target.subresource == "status",
            dry_run=_dry_run(request),
        )
        return json_response(updated)

    async def _patch(self, request: web.Request, target: Target, name: str) -> web.StreamResponse:
        content_type = request.content_type
        if content_type not in PATCH_TYPES:
            raise errors.unsupported_media_type(content_type)
        patch = await read_json(request)

        def apply(current: KubeObject) -> KubeObject:
            try:
                result: KubeObject = apply_patch(content_type, current, patch)
            except PatchError as exc:
                raise ApiError(
                    422,
                    "Invalid",
                    f"the server rejected our request due to an error in our request: {exc}",
                ) from exc
            return result

        updated = self.store.patch(
            target.kind,
            target.namespace or "",
            name,
            apply,
            status_only=target.subresource == "status",
            dry_run=_dry_run(request),
        )
        return json_response(updated)

    async def _delete(self, request: web.Request, target: Target, name: str) -> web.StreamResponse:
        if target.subresource is not None:
            raise errors.method_not_allowed(request.method)
        options = await read_json(request, optional=True)
        deleted = self.store.delete(
            target.kind,
            target.namespace or "",
            name,
            options if isinstance(options, dict) else None,
            dry_run=_dry_run(request),
        )
        return json_response(deleted)


def _openapi(request: web.BaseRequest) -> web.Response:
    if "protobuf" in request.headers.get("Accept", ""):
        return web.Response(body=openapi.protobuf(), content_type=openapi.PROTOBUF)
    return json_response(openapi.document())


def _dry_run(request: web.BaseRequest) -> bool:
    return "All" in request.query.getall("dryRun", [])
