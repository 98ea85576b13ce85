"""Server-side object preparation: metadata the server owns, and status subresource rules."""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from vessel.kube.objects import KubeObject
from vessel_dev.emulators.kube import errors
from vessel_dev.emulators.kube.kinds import Kind, core

# Fields the server owns: client values are ignored on update, as the real server does.
_SERVER_OWNED = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")
# Phases the real registries' PrepareForCreate/defaulting give new objects.
_INITIAL_PHASE = {
    core("namespaces"): "Active",
    core("persistentvolumeclaims"): "Pending",
    core("persistentvolumes"): "Pending",
    core("pods"): "Pending",
}
# apimachinery's generateName alphabet: no vowels (no accidental words), no 0/1/3 (look-alikes).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def unused_name(kind: Kind, prefix: str, taken: Callable[[str], bool]) -> str:
    """A generateName result; like the real server, give up after a few collisions."""
    for _ in range(8):
        name = prefix + "".join(random.choices(_NAME_ALPHABET, k=5))
        if not taken(name):
            return name
    raise errors.already_exists(kind, prefix)


def meta(obj: KubeObject) -> KubeObject:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def require_object(body: Any) -> KubeObject:
    if not isinstance(body, dict):
        raise errors.bad_request("the request body must be a JSON object")
    metadata = body.get("metadata", {})
    if not isinstance(metadata, dict):
        raise errors.bad_request("metadata must be a JSON object")
    return body


def _check_namespace(kind: Kind, namespace: str, metadata: KubeObject, name: str) -> None:
    body_ns = metadata.get("namespace")
    if kind.namespaced and body_ns and body_ns != namespace:
        raise errors.invalid(
            kind,
            name,
            "metadata.namespace",
            f"Invalid value: {body_ns!r}: does not match the namespace of the request "
            f"({namespace})",
            "FieldValueInvalid",
        )


def prepare_create(kind: Kind, namespace: str, body: KubeObject) -> KubeObject:
    """Validate a create body and fill the server-owned metadata except resourceVersion."""
    obj = copy.deepcopy(require_object(body))
    metadata = obj.setdefault("metadata", {})
    name = metadata.get("name") or ""
    if not name and not metadata.get("generateName"):
        raise errors.invalid(
            kind,
            "",
            "metadata.name",
            "Required value: name or generateName is required",
            "FieldValueRequired",
        )
    _check_namespace(kind, namespace, metadata, name)
    if kind.namespaced:
        metadata["namespace"] = namespace
    else:
        metadata.pop("namespace", None)
    if metadata.get("resourceVersion"):
        # The real storage layer rejects this with a bare 500; restore code must strip it.
        raise errors.ApiError(500, "", "resourceVersion should not be set on objects to be created")
    for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
        metadata.pop(field, None)
    metadata["uid"] = str(uuid.uuid4())
    metadata["creationTimestamp"] = now()
    metadata["generation"] = 1
    obj["kind"], obj["apiVersion"] = kind.kind, kind.api_version
    if kind.has_status:
        # The real server resets status on create; only the status subresource writes it.
        obj.pop("status", None)
    if kind in _INITIAL_PHASE:
        obj["status"] = {"phase": _INITIAL_PHASE[kind]}
    return obj


def prepare_update(
    kind: Kind, current: KubeObject, body: KubeObject, status_only: bool
) -> KubeObject:
    """Merge a replacement body onto the stored object under the status subresource rules."""
    body = require_object(body)
    name = meta(current)["name"]
    body_name = meta(body).get("name")
    if body_name and body_name != name:
        raise errors.bad_request(
            f"the name of the object ({body_name}) does not match the name on the URL ({name})"
        )
    _check_namespace(kind, meta(current).get("namespace", ""), meta(body), name)
    if status_only:
        new = copy.deepcopy(current)
        _set_or_drop(new, "status", copy.deepcopy(body.get("status")))
        return new
    new = copy.deepcopy(body)
    metadata = new.setdefault("metadata", {})
    for field in ("name", "namespace", *_SERVER_OWNED):
        _set_or_drop(metadata, field, meta(current).get(field))
    metadata["generation"] = meta(current).get("generation", 1)
    new["kind"], new["apiVersion"] = kind.kind, kind.api_version
    if kind.has_status:
        _set_or_drop(new, "status", copy.deepcopy(current.get("status")))
    if spec_changed(current, new):
        metadata["generation"] += 1
    return new


def _set_or_drop(target: KubeObject, key: str, value: Any) -> None:
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value


def spec_changed(old: KubeObject, new: KubeObject) -> bool:
    """Anything outside metadata and status is "spec" for generation purposes."""
    ignored = {"metadata", "status", "kind", "apiVersion"}
    keys = (old.keys() | new.keys()) - ignored
    return any(old.get(k) != new.get(k) for k in keys)


def same_content(old: KubeObject, new: KubeObject) -> bool:
    """Whether a write would change nothing; the real server then skips it (no new rv)."""
    if old.keys() != new.keys() or any(old[k] != new[k] for k in old if k != "metadata"):
        return False
    old_meta = {k: v for k, v in meta(old).items() if k != "resourceVersion"}
    new_meta = {k: v for k, v in meta(new).items() if k != "resourceVersion"}
    return old_meta == new_meta


def mark_deleting(obj: KubeObject) -> KubeObject:
    new = copy.deepcopy(obj)
    metadata = new["metadata"]
    metadata["deletionTimestamp"] = now()
    metadata["deletionGracePeriodSeconds"] = 0
    metadata["generation"] = metadata.get("generation", 1) + 1
    return new


def resource_version_of(obj: KubeObject) -> str:
    value = meta(obj).get("resourceVersion")
    return str(value) if value else ""


def check_preconditions(kind: Kind, current: KubeObject, preconditions: KubeObject) -> None:
    """DeleteOptions.preconditions: uid and resourceVersion must match the stored object."""
    for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
        wanted, actual = preconditions.get(field), meta(current).get(field)
        if wanted and wanted != actual:
            raise errors.precondition_failed(
                kind,
                meta(current)["name"],
                f"Precondition failed: {label} in precondition: {wanted}, "
                f"{label} in object meta: {actual}",
            )
