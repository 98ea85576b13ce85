"""Errors of the Kubernetes port, classified for retry decisions.

Permanent for the request: `NotFound`, `AlreadyExists`, `Invalid`, `Forbidden`,
`Unauthorized`. Temporary: `Conflict` (re-read and retry), `Gone` (relist), `Unreachable`.
Exec in a container: `ExecTimeout`, `ExecFailed` (a bad request, e.g. an unknown container,
is `BadRequest`).
"""

from __future__ import annotations


class KubeError(Exception):
    status: int = 0


class NotFound(KubeError):
    status = 404


class AlreadyExists(KubeError):
    status = 409


class Conflict(KubeError):
    status = 409


class Gone(KubeError):
    """The watch's resourceVersion is too old: list again."""

    status = 410


class BadRequest(KubeError):
    status = 400


class Invalid(KubeError):
    status = 422


class Unauthorized(KubeError):
    status = 401


class Forbidden(KubeError):
    status = 403


class Unreachable(KubeError):
    pass


class ExecTimeout(KubeError):
    """A command run in a container did not finish in time; its stream was closed."""


class ExecFailed(KubeError):
    """A command could not be run in a container at all (not its non-zero exit: the
    runtime could not start it, or the stream ended without a status)."""


_CLASSES: list[type[KubeError]] = [KubeError, *KubeError.__subclasses__()]
BY_NAME: dict[str, type[KubeError]] = {cls.__name__: cls for cls in _CLASSES}
"""Every error class by name: an error that crossed the bus as its class's name (a cluster
agent's answer) is raised again as the same class."""
