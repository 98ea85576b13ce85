"""A cluster's connection health, from what its informers hear from the API server.

Cluster-wide problems (invalid kubeconfig, unreachable server, rejected credentials) make
the cluster Unreachable; a kind the server refuses (403) or does not serve is a condition
of its own while every other kind keeps working. Any answer from the server clears the
connection problem; an answer for a kind clears that kind's problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from services.discovery.kinds import WATCHED, WatchedKind
from vessel.contracts.events import ClusterCondition, ClusterState
from vessel.kube.errors import Forbidden, KubeError, NotFound, Unauthorized, Unreachable

_ERRNO = re.compile(r"\[Errno -?\d+\][^'\")\]]*")
_KIND_REASONS = {
    "Forbidden": "RBAC forbids listing or watching {kinds} (HTTP 403)",
    "KindNotServed": "the API server does not serve {kinds}",
    "ListFailed": "listing {kinds} failed: {detail}",
}


def short(exc: Exception, limit: int = 240) -> str:
    """The gist of a kube port error: the errno of a connection error, else its text."""
    text = str(exc)
    errno = _ERRNO.search(text)
    if errno:
        return errno.group(0).strip()
    text = text.partition(": ")[2] or text  # the port's messages start with the cluster
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ClusterHealth:
    def __init__(self, server: str, on_change: Callable[[], None]) -> None:
        self.server = server or "(no server)"
        self.on_change = on_change
        self.fatal: ClusterCondition | None = None
        self.connection: ClusterCondition | None = None
        self.kinds: dict[str, tuple[str, str]] = {}
        """Kind -> (reason, detail) of the kinds with a problem."""
        self.last_contact: datetime | None = None

    def invalid(self, message: str) -> None:
        self.fatal = ClusterCondition(reason="InvalidKubeconfig", message=message)
        self.on_change()

    def contact(self, kind: WatchedKind) -> None:
        changed = (
            self.last_contact is None or self.connection is not None or kind.kind in self.kinds
        )
        self.last_contact = datetime.now(UTC)
        self.connection = None
        self.kinds.pop(kind.kind, None)
        if changed:
            self.on_change()

    def failed(self, kind: WatchedKind, exc: KubeError) -> None:
        before = (self.connection, dict(self.kinds))
        if isinstance(exc, Unreachable):
            self.connection = ClusterCondition(
                reason="ServerUnreachable",
                message=f"API server {self.server} is unreachable: {short(exc)}",
            )
        elif isinstance(exc, Unauthorized):
            self.connection = ClusterCondition(
                reason="CredentialsRejected",
                message=f"API server {self.server} rejected the kubeconfig's credentials "
                "(HTTP 401 Unauthorized)",
            )
        elif isinstance(exc, Forbidden):
            self.kinds[kind.kind] = ("Forbidden", "")
        elif isinstance(exc, NotFound):
            self.kinds[kind.kind] = ("KindNotServed", "")
        else:
            self.kinds[kind.kind] = ("ListFailed", short(exc))
        if (self.connection, self.kinds) != before:
            self.on_change()

    def conditions(self) -> list[ClusterCondition]:
        out = [c for c in (self.fatal, self.connection) if c is not None]
        by_reason: dict[tuple[str, str], list[str]] = {}
        for kind in WATCHED:
            if kind.kind in self.kinds:
                by_reason.setdefault(self.kinds[kind.kind], []).append(kind.resource)
        for (reason, detail), resources in sorted(by_reason.items()):
            text = _KIND_REASONS[reason].format(kinds=", ".join(resources), detail=detail)
            out.append(ClusterCondition(reason=reason, message=text, kinds=resources))
        return out

    def state(self) -> ClusterState:
        if self.fatal is not None or self.connection is not None:
            return "Unreachable"
        if len(self.kinds) == len(WATCHED):
            return "Unreachable"  # nothing at all can be listed
        if self.last_contact is None:
            return "Connecting"
        return "Available"

    def reason(self) -> str:
        return "; ".join(c.message for c in self.conditions())
