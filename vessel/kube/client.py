"""The only module that imports `kubernetes`: objects as plain dicts over the official client.

`KubeCluster` methods are async; each blocking client call runs in a worker thread.
Objects are addressed by (apiVersion, kind), found through API discovery, so any kind the
server serves works. Patches are JSON merge patches (RFC 7386). Watches run in a daemon
thread and end after `timeout` seconds, so an informer re-watches from its last
resourceVersion and a cancelled watch never outlives its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import config, watch
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError
from kubernetes.stream import stream as ws_stream

from vessel.kube import errors
from vessel.kube.exec_stream import ExecResult, connect_error, exit_code, read_exec
from vessel.kube.objects import KubeObject, event_on

T = TypeVar("T")
Argv = list[str]
"""A command and its arguments (`list` is a method name inside `KubeCluster`)."""
MERGE_PATCH = "application/merge-patch+json"
_BY_STATUS: dict[int, type[errors.KubeError]] = {
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    410: errors.Gone,
    422: errors.Invalid,
}


_cache_dir: tempfile.TemporaryDirectory[str] | None = None
_cache_lock = threading.Lock()


def _discovery_cache_file() -> str:
    """A discovery cache file of this client's own.

    The client's default is one file per server URL in the shared temp directory: two
    processes talking to one server race on it (one truncates it while the other reads,
    logging `load cache error`), and a server restarted on the same port inherits a
    cache that lists another server's kinds. A file per client in a directory of this
    process, removed when the process ends, has neither problem.
    """
    global _cache_dir
    with _cache_lock:
        if _cache_dir is None:
            _cache_dir = tempfile.TemporaryDirectory(prefix="vessel-kube-discovery-")
        return f"{_cache_dir.name}/{uuid.uuid4().hex}.json"


def _translate(exc: Exception, what: str) -> errors.KubeError:
    status = getattr(exc, "status", None)
    if isinstance(exc, (ApiException, DynamicApiError)) and status is not None:
        if status == 409:
            body = str(getattr(exc, "body", "") or "")
            cls: type[errors.KubeError] = (
                errors.AlreadyExists if "AlreadyExists" in body else errors.Conflict
            )
        else:
            cls = _BY_STATUS.get(int(status), errors.KubeError)
        return cls(f"{what}: HTTP {status} {getattr(exc, 'reason', '')}".strip())
    if isinstance(exc, ResourceNotFoundError):
        return errors.NotFound(f"{what}: kind not served by the API server")
    if isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
        return errors.Unreachable(f"{what}: API server unreachable: {exc}")
    return errors.KubeError(f"{what}: {exc}")


class KubeCluster:
    def __init__(self, kubeconfig: Path, name: str = "") -> None:
        self.name = name or str(kubeconfig)
        try:
            self._api = config.new_client_from_config(config_file=str(kubeconfig))
        except Exception as exc:
            raise errors.KubeError(f"cluster {self.name}: invalid kubeconfig: {exc}") from exc
        self._dyn: DynamicClient | None = None
        self._lock = threading.Lock()

    def _resource(self, api_version: str, kind: str) -> Any:
        with self._lock:
            if self._dyn is None:
                self._dyn = DynamicClient(self._api, cache_file=_discovery_cache_file())
        return self._dyn.resources.get(api_version=api_version, kind=kind)

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        def run() -> T:
            try:
                return fn()
            except errors.KubeError:
                raise
            except Exception as exc:
                raise _translate(exc, f"{self.name}: {what}") from exc

        return await asyncio.to_thread(run)

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> KubeObject | None:
        try:
            return await self._call(
                f"get {kind} {namespace}/{name}",
                lambda: (
                    self._resource(api_version, kind).get(name=name, namespace=namespace).to_dict()
                ),
            )
        except errors.NotFound:
            return None

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> tuple[list[KubeObject], str]:
        """Items and the list's resourceVersion (where a watch resumes)."""

        def run() -> tuple[list[KubeObject], str]:
            result = self._resource(api_version, kind).get(
                namespace=namespace, label_selector=label_selector
            )
            doc = result.to_dict()
            return list(doc.get("items") or []), str(doc["metadata"].get("resourceVersion", ""))

        return await self._call(f"list {kind}", run)

    async def create(self, obj: KubeObject) -> KubeObject:
        meta = obj.get("metadata", {})
        return await self._call(
            f"create {obj.get('kind')} {meta.get('namespace')}/{meta.get('name')}",
            lambda: (
                self._resource(obj["apiVersion"], obj["kind"])
                .create(body=obj, namespace=meta.get("namespace"))
                .to_dict()
            ),
        )

    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: KubeObject,
        *,
        status: bool = False,
    ) -> KubeObject:
        def run() -> KubeObject:
            resource = self._resource(api_version, kind)
            if status:
                resource = resource.subresources["status"]
            patched: KubeObject = resource.patch(
                body=patch, name=name, namespace=namespace, content_type=MERGE_PATCH
            ).to_dict()
            return patched

        return await self._call(f"patch {kind} {namespace}/{name}", run)

    async def replace(self, obj: KubeObject) -> KubeObject:
        """PUT `obj` over the stored object; `metadata.resourceVersion` must be the stored
        one (Conflict otherwise), so a concurrent change is never overwritten unseen."""
        meta = obj.get("metadata", {})
        return await self._call(
            f"replace {obj.get('kind')} {meta.get('namespace')}/{meta.get('name')}",
            lambda: (
                self._resource(obj["apiVersion"], obj["kind"])
                .replace(body=obj, name=meta.get("name"), namespace=meta.get("namespace"))
                .to_dict()
            ),
        )

    async def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> None:
        with contextlib.suppress(errors.NotFound):
            await self._call(
                f"delete {kind} {namespace}/{name}",
                lambda: self._resource(api_version, kind).delete(name=name, namespace=namespace),
            )

    async def exec(
        self,
        namespace: str,
        pod: str,
        container: str,
        command: Argv,
        timeout: float,  # noqa: ASYNC109 - the worker thread enforces it, closing the stream
    ) -> ExecResult:
        """Run `command` in a container (pods/exec over WebSocket) and wait for it.

        Not idempotent: every call runs the command. Raises `NotFound` for a missing pod,
        `BadRequest` for a container the pod does not have, `ExecTimeout` when it runs
        longer than `timeout` seconds (the stream is closed, which ends it), `ExecFailed`
        when it could not be started. A non-zero exit is a result, not an error.
        """
        if not command:
            raise errors.BadRequest(f"{self.name}: exec in {namespace}/{pod}: empty command")
        what = f"{self.name}: exec in {namespace}/{pod}/{container}"
        cancelled = threading.Event()
        task = asyncio.create_task(
            asyncio.to_thread(
                self._exec_blocking, what, namespace, pod, container, command, timeout, cancelled
            )
        )
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled.set()  # the worker closes the stream within a poll interval
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            raise

    def _exec_blocking(
        self,
        what: str,
        namespace: str,
        pod: str,
        container: str,
        command: Argv,
        timeout: float,
        cancelled: threading.Event,
    ) -> ExecResult:
        # Imported here: the generated CoreV1Api module alone is ~80 MB of code objects, and
        # a process that never runs a command in a pod (most never do) need not hold it.
        from kubernetes.client.api.core_v1_api import CoreV1Api

        deadline = time.monotonic() + timeout
        # `stream` swaps the ApiClient's transport while it connects: never the shared one.
        api = ApiClient(configuration=self._api.configuration)
        try:
            try:
                ws = ws_stream(
                    CoreV1Api(api).connect_get_namespaced_pod_exec,
                    pod,
                    namespace,
                    command=command,
                    container=container,
                    stdout=True,
                    stderr=True,
                    stdin=False,
                    tty=False,
                    binary=True,
                    _preload_content=False,
                )
            except ApiException as exc:
                raise connect_error(exc, what) from exc
            try:
                out, err, status = read_exec(ws.sock, deadline, cancelled)
            except TimeoutError:
                raise errors.ExecTimeout(
                    f"{what}: {command[0]!r} did not finish within {timeout:g}s; stream closed"
                ) from None
            except Exception as exc:
                raise errors.ExecFailed(f"{what}: exec stream failed: {exc}") from exc
            finally:
                ws.close()
            code = exit_code(status, what)
            return ExecResult(code, out.text(), err.text(), out.truncated or err.truncated)
        finally:
            api.close()

    async def emit_event(
        self,
        involved: KubeObject,
        reason: str,
        message: str,
        *,
        component: str,
        type_: str = "Warning",
    ) -> None:
        """Record a Kubernetes Event on `involved` (what `kubectl describe` shows)."""
        await self.create(event_on(involved, reason, message, component=component, type_=type_))

    async def watch(
        self,
        api_version: str,
        kind: str,
        resource_version: str,
        *,
        namespace: str | None = None,
        timeout_seconds: int = 30,
    ) -> AsyncIterator[tuple[str, KubeObject]]:
        """(type, object) events after `resource_version`; raises `Gone` when it expired."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, KubeObject] | Exception | None] = asyncio.Queue()
        watcher = watch.Watch()

        def pump() -> None:
            try:
                for event in self._stream(
                    watcher, api_version, kind, namespace, resource_version, timeout_seconds
                ):
                    loop.call_soon_threadsafe(queue.put_nowait, event)
                loop.call_soon_threadsafe(queue.put_nowait, None)
            except Exception as exc:
                err = (
                    exc
                    if isinstance(exc, errors.KubeError)
                    else _translate(exc, f"{self.name}: watch {kind}")
                )
                with contextlib.suppress(RuntimeError):  # loop closed during shutdown
                    loop.call_soon_threadsafe(queue.put_nowait, err)

        threading.Thread(target=pump, daemon=True, name=f"watch-{kind}").start()
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            watcher.stop()

    def _stream(
        self,
        watcher: Any,
        api_version: str,
        kind: str,
        namespace: str | None,
        resource_version: str,
        timeout: int,
    ) -> Iterator[tuple[str, KubeObject]]:
        resource = self._resource(api_version, kind)
        for event in self._dyn_watch(resource, watcher, namespace, resource_version, timeout):
            yield str(event["type"]), dict(event["raw_object"])

    def _dyn_watch(
        self,
        resource: Any,
        watcher: Any,
        namespace: str | None,
        resource_version: str,
        timeout: int,
    ) -> Iterator[Any]:
        assert self._dyn is not None
        return iter(
            self._dyn.watch(
                resource,
                namespace=namespace,
                resource_version=resource_version,
                timeout=timeout,
                watcher=watcher,
                allow_watch_bookmarks=True,
            )
        )


def quantity_bytes(quantity: str | int) -> int:
    """Bytes in a Kubernetes quantity ("1Gi", "500M", "1.5Ti"); ValueError if malformed."""
    from kubernetes.utils import parse_quantity

    value = parse_quantity(quantity)
    if value < 0 or value != int(value):
        raise ValueError(f"{quantity!r} is not a whole number of bytes")
    return int(value)
