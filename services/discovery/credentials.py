"""Kubeconfigs of registered clusters: checked, then kept under the state directory.

Inline kubeconfig text is written to `<state_dir>/clusters/<id>.kubeconfig` (0600, in a
0700 directory); a kubeconfig given as a path is kept as a reference to that file
(`<id>.path`). Neither ever reaches KV, events or logs: error messages name the file,
the line or the missing field, never a value, and pass through `redact`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_SECRET_FIELDS = (
    "token",
    "password",
    "client-key-data",
    "client-certificate-data",
    "username",
    "tokenFile",
    "client-key",
)


class KubeconfigError(ValueError):
    """The kubeconfig cannot be used; the message names what is wrong (never a value)."""


@dataclass(frozen=True)
class Kubeconfig:
    server: str
    context: str
    secrets: list[str] = field(default_factory=list)
    """Credential values in the file, for `redact`."""


def _secrets(users: list[Any]) -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _SECRET_FIELDS and isinstance(value, str) and len(value) >= 4:
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(users)
    return found


def _named(entries: Any, name: str, what: str, where: str) -> dict[str, Any]:
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(what)
            if isinstance(value, dict):
                return value
            raise KubeconfigError(f"{where}: {what} {name!r} has no `{what}` section")
    raise KubeconfigError(f"{where}: {what} {name!r} is not defined")


def parse(text: str, where: str = "kubeconfig") -> Kubeconfig:
    """The current context's server; KubeconfigError if the kubeconfig cannot be used."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise KubeconfigError(f"{where}: not valid YAML{at}") from None
    if not isinstance(doc, dict):
        raise KubeconfigError(f"{where}: not a kubeconfig (expected a mapping)")
    secrets = _secrets(doc.get("users") or [])
    context_name = doc.get("current-context")
    if not context_name:
        raise KubeconfigError(f"{where}: no current-context")
    context = _named(doc.get("contexts"), context_name, "context", where)
    cluster_name, user_name = context.get("cluster"), context.get("user")
    if not cluster_name:
        raise KubeconfigError(f"{where}: context {context_name!r} names no cluster")
    cluster = _named(doc.get("clusters"), cluster_name, "cluster", where)
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith(("http://", "https://")):
        raise KubeconfigError(f"{where}: cluster {cluster_name!r} has no http(s) server URL")
    if user_name:
        _named(doc.get("users"), user_name, "user", where)
    return Kubeconfig(server=server, context=str(context_name), secrets=secrets)


def read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise KubeconfigError(f"kubeconfig file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        raise KubeconfigError(f"kubeconfig file {path} cannot be read: {reason}") from None


def redact(message: str, secrets: list[str]) -> str:
    for value in sorted(secrets, key=len, reverse=True):
        message = message.replace(value, "[redacted]")
    return message


class CredentialStore:
    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "clusters"

    def _ensure(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.root, 0o700)
        except OSError as exc:
            raise KubeconfigError(
                f"state directory {self.root} cannot be used: {exc.strerror}"
            ) from None

    def _write(self, path: Path, text: str) -> None:
        self._ensure()
        fd, temp = tempfile.mkstemp(dir=self.root, prefix=f".{path.name}.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def store_inline(self, cluster: str, text: str) -> Path:
        path = self.root / f"{cluster}.kubeconfig"
        self._write(path, text)
        with contextlib.suppress(FileNotFoundError):
            (self.root / f"{cluster}.path").unlink()
        return path

    def store_reference(self, cluster: str, kubeconfig: Path) -> Path:
        self._write(self.root / f"{cluster}.path", str(kubeconfig.resolve()))
        with contextlib.suppress(FileNotFoundError):
            (self.root / f"{cluster}.kubeconfig").unlink()
        return kubeconfig

    def resolve(self, cluster: str) -> Path | None:
        """The kubeconfig kept for `cluster`, or None when there is none."""
        inline = self.root / f"{cluster}.kubeconfig"
        if inline.is_file():
            return inline
        reference = self.root / f"{cluster}.path"
        if reference.is_file():
            return Path(reference.read_text().strip())
        return None

    def forget(self, cluster: str) -> None:
        for suffix in (".kubeconfig", ".path"):
            with contextlib.suppress(FileNotFoundError):
                (self.root / f"{cluster}{suffix}").unlink()
