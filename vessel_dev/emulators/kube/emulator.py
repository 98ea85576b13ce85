"""``KubeEmulator``: the API server on its own thread and event loop."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import os
import secrets
import socket
import ssl
import tempfile
import threading
from pathlib import Path

from aiohttp import web

from vessel_dev.emulators.kube import controllers
from vessel_dev.emulators.kube.server import ApiServer
from vessel_dev.emulators.kube.store import Store
from vessel_dev.emulators.kube.tls import Certificates, generate_certificates

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 30.0
# Watch handlers end as soon as their queues are closed; this only bounds stuck requests.
_SHUTDOWN_GRACE = 2.0


class KubeEmulator:
    """An in-process Kubernetes API server that the official client talks to over HTTPS."""

    def __init__(
        self,
        *,
        token: str | None = None,
        controllers: bool = True,
        history: int = 10_000,
        allow_exec: bool = False,
        tls: bool = True,
    ) -> None:
        """`token`: the bearer token clients must present (default: a random one, written
        into the kubeconfig). `allow_exec`: serve `pods/exec` by running the command on
        this host as this process's user — only for tests and the embedded demo.
        `tls`: serve HTTPS with a CA of this instance's own (see ``tls.py``); False serves
        plain HTTP, which kubectl will not send a token over."""
        self._token = token or secrets.token_urlsafe(24)
        self._tls = tls
        self._certificates: Certificates | None = None
        self._allow_exec = allow_exec
        self._controllers = controllers
        self._history = history
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._store: Store | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the emulator has not been started")
        return self._url

    @property
    def ca_pem(self) -> str | None:
        """The PEM certificate of the CA that signed the serving certificate (None: HTTP)."""
        return self._certificates.ca_pem.decode() if self._certificates else None

    def client_ssl_context(self) -> ssl.SSLContext | None:
        """For code reaching ``url`` without the kubeconfig: trusts this instance's CA."""
        return self._certificates.client_context() if self._certificates else None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("the emulator is already running")
            if self._tls and self._certificates is None:
                # Kept across restarts, so kubeconfigs already written stay valid.
                self._certificates = generate_certificates((host,))
            sock = _bind(host, port)
            loop = asyncio.new_event_loop()
            ready: concurrent.futures.Future[web.AppRunner] = concurrent.futures.Future()
            thread = threading.Thread(
                target=self._serve, args=(loop, sock, ready), name="kube-emulator", daemon=True
            )
            thread.start()
            try:
                ready.result(timeout=_START_TIMEOUT)
            except BaseException:
                sock.close()
                thread.join(_START_TIMEOUT)
                raise
            self._thread, self._loop = thread, loop
            bound_port = sock.getsockname()[1]
            scheme = "https" if self._certificates else "http"
            self._url = f"{scheme}://{f'[{host}]' if ':' in host else host}:{bound_port}"
            return self._url

    def stop(self) -> None:
        with self._lock:
            thread, loop = self._thread, self._loop
            self._thread = self._loop = None
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_STOP_TIMEOUT)

    def write_kubeconfig(self, path: str | os.PathLike[str], *, context: str = "emulator") -> None:
        """Write a kubeconfig for this emulator atomically (JSON, which is valid YAML)."""
        cluster: dict[str, str] = {"server": self.url}
        if self._certificates is not None:
            ca = base64.b64encode(self._certificates.ca_pem).decode()
            cluster["certificate-authority-data"] = ca
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": cluster}],
            "users": [{"name": context, "user": {"token": self._token}}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": context, "user": context, "namespace": "default"},
                }
            ],
            "current-context": context,
            "preferences": {},
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Readers polling for the file must never see it half-written.
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "w") as handle:
            json.dump(config, handle, indent=2)
        os.replace(temp, target)

    def _serve(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        ready: concurrent.futures.Future[web.AppRunner],
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            runner = loop.run_until_complete(self._open(sock))
        except BaseException as exc:
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(runner)
        try:
            loop.run_forever()
            loop.run_until_complete(self._close(runner))
        finally:
            _cancel_leftovers(loop)
            loop.close()

    async def _open(self, sock: socket.socket) -> web.AppRunner:
        store = Store(history=self._history)
        if self._controllers:
            controllers.install(store)
        self._store = store
        server = ApiServer(
            store,
            self._token,
            watch_backlog=max(self._history, 1000),
            allow_exec=self._allow_exec,
        )
        runner = web.AppRunner(
            server.application(),
            access_log=None,  # per-request logging is unbounded noise; nothing is kept
            handler_cancellation=True,  # a client hanging up on a watch ends its handler
            shutdown_timeout=_SHUTDOWN_GRACE,
        )
        await runner.setup()
        context = self._certificates.server_context() if self._certificates else None
        await web.SockSite(runner, sock, ssl_context=context).start()
        return runner

    async def _close(self, runner: web.AppRunner) -> None:
        if self._store is not None:
            self._store.log.close_all()
        await runner.cleanup()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
