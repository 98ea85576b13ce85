"""API errors rendered as Kubernetes ``Status`` objects, the wire format clients parse."""

from __future__ import annotations

from vessel.kube.objects import KubeObject
from vessel_dev.emulators.kube.kinds import Kind


class ApiError(Exception):
    """A failed request; ``status()`` is the body the real API server would send."""

    def __init__(
        self, code: int, reason: str, message: str, details: KubeObject | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> KubeObject:
        return failure_status(self.code, self.reason, self.message, self.details)


def failure_status(
    code: int, reason: str, message: str, details: KubeObject | None = None
) -> KubeObject:
    body: KubeObject = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if not reason:
        del body["reason"]  # StatusReasonUnknown is "", which Go's omitempty drops
    if details is not None:
        body["details"] = details
    return body


def _details(kind: Kind, name: str, kind_field: str | None = None) -> KubeObject:
    # The real server omits empty fields (Go omitempty), so clients never see group "".
    details: KubeObject = {"name": name, "kind": kind_field or kind.plural}
    if kind.group:
        details["group"] = kind.group
    return details


def not_found(kind: Kind, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{kind.qualified} "{name}" not found', _details(kind, name))


def already_exists(kind: Kind, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{kind.qualified} "{name}" already exists', _details(kind, name)
    )


def conflict(kind: Kind, name: str) -> ApiError:
    message = (
        f'Operation cannot be fulfilled on {kind.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    return ApiError(409, "Conflict", message, _details(kind, name))


def precondition_failed(kind: Kind, name: str, what: str) -> ApiError:
    message = f'Operation cannot be fulfilled on {kind.qualified} "{name}": {what}'
    return ApiError(409, "Conflict", message, _details(kind, name))


def invalid(kind: Kind, name: str, field: str, detail: str, cause: str) -> ApiError:
    details = _details(kind, name, kind_field=kind.kind)
    details["causes"] = [{"reason": cause, "message": detail, "field": field}]
    return ApiError(422, "Invalid", f'{kind.kind} "{name}" is invalid: {field}: {detail}', details)


def forbidden(kind: Kind, name: str, why: str) -> ApiError:
    message = f'{kind.qualified} "{name}" is forbidden: {why}'
    return ApiError(403, "Forbidden", message, _details(kind, name))


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def resource_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def method_not_allowed(method: str) -> ApiError:
    message = f"the server does not allow this method on the requested resource ({method})"
    return ApiError(405, "MethodNotAllowed", message, {})


def internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}")


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def expired(requested: int, oldest: int) -> ApiError:
    return ApiError(410, "Expired", f"too old resource version: {requested} ({oldest})")


def unsupported_media_type(content_type: str) -> ApiError:
    message = (
        f"the body of the request was in an unknown format ({content_type or 'none'}) - accepted "
        "media types include: application/json-patch+json, application/merge-patch+json, "
        "application/strategic-merge-patch+json"
    )
    return ApiError(415, "UnsupportedMediaType", message)
