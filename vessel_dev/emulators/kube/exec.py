"""``pods/exec`` over WebSocket (``v4.channel.k8s.io``), as the official client speaks it.

Execution hooks run commands in an app's containers; to test them without a cluster the
emulator accepts exec requests exactly as a real API server does (query parameters
``command`` (repeated), ``container``, ``stdout``, ``stderr``; the subprotocol's channel
byte 1 for stdout, 2 for stderr and 3 for the final ``Status``) and answers the same errors
before the upgrade: 404 for an unknown pod, 400 for an unknown container or a bad request.

The emulator is for tests: the command runs **on this host** as a subprocess, in a
scratch directory the emulator owns (one per pod container, removed when the server
stops), with the container spec's plain ``env`` values over a minimal environment
(``PATH`` of the host, ``HOME`` the scratch directory, ``HOSTNAME`` the pod name). There
is no image, no isolation and no ``$(VAR)`` expansion; stdin and TTYs are not supported
(400). A client that closes the stream ends the command (its whole process group).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from vessel.kube.objects import KubeObject
from vessel_dev.emulators.kube import errors
from vessel_dev.emulators.kube.kinds import core
from vessel_dev.emulators.kube.store import Store

PROTOCOL = "v4.channel.k8s.io"
STDOUT, STDERR, ERROR = 1, 2, 3
_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/exec/?$")
_PODS = core("pods")
_TRUE = frozenset({"true", "1"})
_CHUNK = 32 * 1024
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExecRequest:
    namespace: str
    pod: str
    container: str
    command: list[str]
    env: dict[str, str]
    stdout: bool
    stderr: bool


def match(path: str) -> tuple[str, str] | None:
    """(namespace, pod) when ``path`` is a pod's exec subresource."""
    found = _PATH.match(path)
    return (found.group(1), found.group(2)) if found else None


def success() -> KubeObject:
    return {"metadata": {}, "status": "Success"}


def exit_failure(code: int) -> KubeObject:
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def start_failure(message: str) -> KubeObject:
    """What the kubelet reports when the runtime cannot start the command at all."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    }


def parse(store: Store, request: web.BaseRequest, namespace: str, name: str) -> ExecRequest:
    """Validate an exec request against the stored pod, in the real server's order."""
    if request.method not in ("GET", "POST"):
        raise errors.method_not_allowed(request.method)
    pod = store.find(_PODS, namespace, name)
    if pod is None:
        raise errors.not_found(_PODS, name)
    query = request.query
    command = query.getall("command", [])
    flags = {key: query.get(key, "").lower() in _TRUE for key in ("stdin", "stdout", "stderr")}
    if not any(flags.values()):
        raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
    if flags["stdin"] or query.get("tty", "").lower() in _TRUE:
        raise errors.bad_request("stdin and tty are not supported by the Kubernetes API emulator")
    if not command:
        raise errors.bad_request("you must specify at least 1 command")
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise errors.bad_request(
            f"cannot exec into a container in a completed pod; current phase is {phase}"
        )
    containers = [c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name")]
    wanted = query.get("container", "")
    if not wanted:
        if len(containers) != 1:
            choices = " ".join(c["name"] for c in containers)
            raise errors.bad_request(
                f"a container name must be specified for pod {name}, choose one of: [{choices}]"
            )
        wanted = containers[0]["name"]
    spec = next((c for c in containers if c["name"] == wanted), None)
    if spec is None:
        raise errors.bad_request(f"container {wanted} is not valid for pod {name}")
    env = {
        str(e["name"]): str(e["value"])
        for e in spec.get("env") or []
        if e.get("name") and isinstance(e.get("value"), str)
    }
    return ExecRequest(namespace, name, wanted, command, env, flags["stdout"], flags["stderr"])


class PodExec:
    """Serves exec requests; owns the scratch directories the commands run in."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._root: Path | None = None
        self._open: set[web.WebSocketResponse] = set()

    def install(self, app: web.Application) -> None:
        app.on_shutdown.append(self._close_streams)
        app.on_cleanup.append(self.cleanup)

    def scratch(self, req: ExecRequest) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="vessel-kube-exec-"))
        path = self._root / req.namespace / req.pod / req.container
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def _close_streams(self, _app: web.Application) -> None:
        # Open streams would hold the server's graceful shutdown for its whole timeout.
        for ws in list(self._open):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"API server shutting down")

    async def cleanup(self, _app: web.Application | None = None) -> None:
        if self._root is not None:
            await asyncio.to_thread(shutil.rmtree, self._root, ignore_errors=True)
            self._root = None

    async def serve(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        req = parse(self._store, request, namespace, name)
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        if PROTOCOL not in offered:
            raise errors.bad_request(f"exec needs the WebSocket subprotocol {PROTOCOL}")
        ws = web.WebSocketResponse(protocols=(PROTOCOL,))
        if not ws.can_prepare(request).ok:
            raise errors.bad_request("Upgrade request required")
        cwd = self.scratch(req)
        await ws.prepare(request)
        self._open.add(ws)
        try:
            try:
                status = await _run(ws, req, cwd)
            except Exception as exc:  # after the upgrade an error can only travel as a Status
                log.exception("exec in %s/%s failed", namespace, name)
                status = start_failure(f"exec failed in the emulator: {exc!r}")
            if status is not None:
                await ws.send_bytes(bytes([ERROR]) + json.dumps(status).encode())
        finally:
            self._open.discard(ws)
            await ws.close()
        return ws


def _environment(req: ExecRequest, cwd: Path) -> dict[str, str]:
    base = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(cwd), "HOSTNAME": req.pod}
    return base | req.env


async def _run(ws: web.WebSocketResponse, req: ExecRequest, cwd: Path) -> KubeObject | None:
    """Run the command, streaming its output; the final Status, or None if the client left."""
    pipe = asyncio.subprocess.PIPE
    devnull = asyncio.subprocess.DEVNULL
    try:
        proc = await asyncio.create_subprocess_exec(
            *req.command,
            cwd=cwd,
            env=_environment(req, cwd),
            stdin=devnull,
            stdout=pipe if req.stdout else devnull,
            stderr=pipe if req.stderr else devnull,
            start_new_session=True,  # one process group: a closed stream ends it all
        )
    except OSError as exc:
        return start_failure(
            f"failed to exec in container: exec: {req.command[0]!r}: {exc.strerror or exc}"
        )
    try:
        pumps = [
            _pump(stream, channel, ws)
            for stream, channel in ((proc.stdout, STDOUT), (proc.stderr, STDERR))
            if stream is not None
        ]
        finished: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(*pumps, proc.wait()))
        left: asyncio.Future[Any] = asyncio.ensure_future(_until_closed(ws))
        await asyncio.wait({finished, left}, return_when=asyncio.FIRST_COMPLETED)
        left.cancel()
        await asyncio.gather(left, return_exceptions=True)  # no receive() left pending
        if not finished.done():
            finished.cancel()
            return None
        code = await proc.wait()
        # A shell reports death by signal N as 128 + N; asyncio reports it as -N.
        return success() if code == 0 else exit_failure(code if code > 0 else 128 - code)
    finally:
        try:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        finally:
            # Close the pipes now, on this loop, even when stopping the emulator cancels the
            # wait: a transport left to the garbage collector would close them after the
            # emulator's loop has ended, and fail there.
            transport = getattr(proc, "_transport", None)
            if transport is not None:
                transport.close()


async def _pump(stream: asyncio.StreamReader, channel: int, ws: web.WebSocketResponse) -> None:
    prefix = bytes([channel])
    while chunk := await stream.read(_CHUNK):
        await ws.send_bytes(prefix + chunk)


async def _until_closed(ws: web.WebSocketResponse) -> None:
    """Return when the client closes the stream (stdin frames are not expected)."""
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            return
