"""Reading a `pods/exec` stream (WebSocket, `v4.channel.k8s.io`) for `KubeCluster.exec`.

Kept apart from the client so the output stays bounded while it arrives: the stream
client's own reader keeps every byte, so frames are read here one by one and only the
last `EXEC_OUTPUT_LIMIT` bytes of stdout and of stderr are kept.
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

from vessel.kube import errors

EXEC_OUTPUT_LIMIT = 64 * 1024
"""Bytes of stdout and of stderr an `exec` keeps (the last ones: errors come at the end)."""
_WS_TEXT, _WS_BINARY, _WS_CLOSE = 0x1, 0x2, 0x8  # RFC 6455 opcodes
_HANDSHAKE = re.compile(r"Handshake status (\d{3})")
_BY_STATUS: dict[int, type[errors.KubeError]] = {
    400: errors.BadRequest,
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
}


@dataclass(frozen=True)
class ExecResult:
    """A finished command: exit code and the tails of its output (`truncated` when longer
    than `EXEC_OUTPUT_LIMIT`)."""

    exit_code: int
    stdout: str
    stderr: str
    truncated: bool = False


class Tail:
    """The last `limit` bytes written, and whether anything was dropped."""

    def __init__(self, limit: int) -> None:
        self.limit, self.data, self.truncated = limit, bytearray(), False

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > self.limit:
            del self.data[: len(self.data) - self.limit]
            self.truncated = True

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


def read_exec(sock: Any, deadline: float, cancelled: threading.Event) -> tuple[Tail, Tail, bytes]:
    """Stdout, stderr and the raw Status of a v4 channel stream, read until the server
    closes it. Raises TimeoutError at `deadline` or as soon as `cancelled` is set."""
    out, err, status = Tail(EXEC_OUTPUT_LIMIT), Tail(EXEC_OUTPUT_LIMIT), bytearray()
    by_channel = {1: out.add, 2: err.add, 3: status.extend}
    poller = select.poll()
    poller.register(sock.sock, select.POLLIN)
    while sock.connected:
        left = deadline - time.monotonic()
        if left <= 0 or cancelled.is_set():
            raise TimeoutError
        # TLS may hold whole decrypted frames that the socket no longer shows as readable.
        buffered = isinstance(sock.sock, ssl.SSLSocket) and sock.sock.pending()
        if not buffered and not poller.poll(min(left, 0.2) * 1000):
            continue
        opcode, frame = sock.recv_data_frame(True)
        if opcode == _WS_CLOSE:
            break
        if opcode in (_WS_TEXT, _WS_BINARY) and frame.data:
            data = bytes(frame.data) if not isinstance(frame.data, str) else frame.data.encode()
            if (sink := by_channel.get(data[0])) is not None:
                sink(data[1:])
    return out, err, bytes(status)


def exit_code(raw: bytes, what: str) -> int:
    """The exit code in the Status a v4 exec stream ends with (channel 3)."""
    if not raw:
        raise errors.ExecFailed(f"{what}: the stream ended without an exit status")
    try:
        status = json.loads(raw)
    except ValueError as exc:
        raise errors.ExecFailed(f"{what}: unreadable exit status {raw[:200]!r}") from exc
    if status.get("status") == "Success":
        return 0
    if status.get("reason") == "NonZeroExitCode":
        for cause in (status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode" and str(cause.get("message", "")).isdigit():
                return int(cause["message"])
    raise errors.ExecFailed(f"{what}: {status.get('message') or status}")


def connect_error(exc: Exception, what: str) -> errors.KubeError:
    """The stream client reports a refused upgrade as status 0 with the HTTP answer in
    its reason (the websocket error it wraps has the status code and body)."""
    cause = exc.__context__
    code = getattr(cause, "status_code", None)
    reason = str(getattr(exc, "reason", "") or exc)
    if code is None and (found := _HANDSHAKE.search(reason)):
        code = int(found.group(1))
    if code is None:
        return errors.Unreachable(f"{what}: exec stream failed: {reason}")
    message = reason
    body = getattr(cause, "resp_body", None)
    if body:
        with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
            message = json.loads(body)["message"]
    cls = _BY_STATUS.get(int(code), errors.KubeError)
    return cls(f"{what}: HTTP {code}: {message}")
