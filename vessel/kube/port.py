"""`KubeApi`: the Kubernetes calls the hub's flows make on a cluster, whoever makes them.

Two implementations: `KubeCluster` (the official client, where the credentials are) and
the protection service's agent client (the same calls as requests to the cluster's agent
over NATS). Both pass `tests/kube/test_kube_port.py`.
"""

from __future__ import annotations

from typing import Protocol

from vessel.kube.exec_stream import ExecResult
from vessel.kube.objects import KubeObject

Argv = list[str]
"""A command and its arguments (`list` is a method name inside the protocol)."""


class KubeApi(Protocol):
    """Objects are plain JSON dicts addressed by (apiVersion, kind), any kind the server
    serves. Errors are the classes of `vessel.kube.errors`, the same for every
    implementation: `NotFound` (an unknown kind too), `AlreadyExists`, `Conflict` (a stale
    resourceVersion on replace), `Invalid`, `Forbidden`, `Unauthorized`, `Unreachable`
    (the API server, or the agent in front of it, cannot be reached: retry later).

    Idempotency: `get`, `list` and `delete` are (deleting a missing object succeeds);
    `create` is not (a second one is `AlreadyExists`); `replace` is guarded by the
    object's resourceVersion; `patch` is a JSON merge patch, so repeating it is harmless.
    `exec` runs the command on every call.
    """

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> KubeObject | None:
        """The object, or None when it does not exist."""
        ...

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> tuple[list[KubeObject], str]:
        """Items and the list's resourceVersion."""
        ...

    async def create(self, obj: KubeObject) -> KubeObject: ...

    async def replace(self, obj: KubeObject) -> KubeObject: ...

    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: KubeObject,
        *,
        status: bool = False,
    ) -> KubeObject: ...

    async def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> None: ...

    async def exec(
        self,
        namespace: str,
        pod: str,
        container: str,
        command: Argv,
        timeout: float,  # noqa: ASYNC109 - the implementation enforces it
    ) -> ExecResult:
        """Run `command` in a container and wait. `NotFound` for a missing pod,
        `BadRequest` for an unknown container, `ExecTimeout` after `timeout` seconds,
        `ExecFailed` when it could not start; a non-zero exit is a result."""
        ...
