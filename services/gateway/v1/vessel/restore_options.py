"""Restore options of `CreateRestore`, and the preflight protection answers before a
restore is accepted (clones and migrations reuse both).

The gateway checks what the request alone shows (names, filters, JSON patches, the
existing-object policy, in-place confirmation); protection's preflight checks what needs
the backup and the target cluster (StorageClasses there, objects already present). Its
reasons map to status codes: invalid -> INVALID_ARGUMENT with field violations, not_found
-> NOT_FOUND, conflict -> FAILED_PRECONDITION naming every conflicting object.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
import jsonpatch
import jsonpointer
from pydantic import ValidationError

from services.gateway.errors import ApiError, invalid
from services.gateway.validation import Violations
from vessel.api.v1 import vessel_pb2 as pb
from vessel.bus.errors import BusError
from vessel.bus.nats_port import Bus
from vessel.contracts import queries
from vessel.contracts.events import QueryFailed
from vessel.contracts.protection import PreflightResult, RestoreOptions, RestorePreflight

PREFLIGHT_SECONDS = 5.0
EXISTING = ("skip", "update", "fail")
FIELDS = {"transforms": "transforms_json"}
"""Option names whose request field is named differently."""
MAPPINGS = frozenset({"storage_class_mapping", "labels"})


def _filter(message: pb.ResourceFilter) -> dict[str, Any]:
    return {
        "kinds": list(message.kinds),
        "names": list(message.names),
        "namespaces": list(message.namespaces),
        "labels": dict(message.labels),
    }


def _transforms(text: str, problems: Violations) -> list[Any]:
    if not text.strip():
        return []
    try:
        doc = json.loads(text)
    except ValueError as exc:
        problems.append(("transforms_json", f"is not JSON: {exc}"))
        return []
    if not isinstance(doc, list):
        problems.append(("transforms_json", 'must be a JSON array of {"match", "patch"}'))
        return []
    for i, transform in enumerate(doc):
        patch = transform.get("patch") if isinstance(transform, dict) else None
        if isinstance(patch, list) and patch:
            try:
                jsonpatch.JsonPatch(patch)
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
                problems.append((f"transforms_json[{i}].patch", f"not an RFC 6902 patch: {exc}"))
    return doc


def _violation(loc: tuple[int | str, ...], message: str) -> tuple[str, str]:
    """A pydantic error as a request field and problem: `include[0].kinds[1]`, and map
    entries as `storage_class_mapping[fast]`, as the gateway names mapping entries."""
    parts = [str(p) for p in loc] or ["options"]
    name, after_map = FIELDS.get(parts[0], parts[0]), parts[0] in MAPPINGS
    for part in parts[1:]:
        if part == "[key]":
            message = f"the key: {message}"
        elif part.isdigit() or after_map:
            name += f"[{part}]"
        else:
            name += f".{part}"
        after_map = part in MAPPINGS
    return name, message


def restore_options(request: pb.CreateRestoreRequest) -> tuple[RestoreOptions, Violations]:
    """The request's options and what is wrong with them (empty: nothing)."""
    problems: Violations = []
    existing = request.existing or "skip"
    if existing not in EXISTING:
        problems.append(("existing", f"{existing!r} is not one of {', '.join(EXISTING)}"))
        existing = "skip"
    if request.in_place and not request.confirm:
        problems.append(
            ("confirm", "an in-place restore replaces the app where it runs: set confirm")
        )
    fields = {
        "storage_class_mapping": dict(request.storage_class_mapping),
        "include": [_filter(f) for f in request.include],
        "exclude": [_filter(f) for f in request.exclude],
        "transforms": _transforms(request.transforms_json, problems),
        "existing": existing,
        "in_place": request.in_place,
        "confirm": request.confirm,
        "trust_unsealed": request.trust_unsealed,
        "cleanup_on_failure": not request.keep_on_failure,
    }
    try:
        options = RestoreOptions.model_validate(fields)
    except ValidationError as exc:
        problems += [_violation(e["loc"], e["msg"]) for e in exc.errors()]
        options = RestoreOptions()
    return options, problems


def is_plain(options: RestoreOptions) -> bool:
    """Nothing beyond what a restore could ask before options existed."""
    return options == RestoreOptions()


def _request_field(field: str) -> str:
    name = field.removeprefix("options.")
    head, dot, rest = name.partition(".")
    return FIELDS.get(head, head) + dot + rest


async def preflight(bus: Bus, query: RestorePreflight, required: bool) -> None:
    """Ask protection whether it would accept the restore; raise the refusal as an ApiError.
    When no protection replica serves the query at all, a restore that is not `required`
    to pass it is accepted (its command waits in the queue, and protection checks it then);
    a replica that does not answer in time is UNAVAILABLE either way."""
    try:
        raw = await bus.request(
            queries.QUERY_RESTORE_PREFLIGHT, query.model_dump_json().encode(), PREFLIGHT_SECONDS
        )
    except TimeoutError:
        raise ApiError(
            grpc.StatusCode.UNAVAILABLE,
            f"protection did not answer the restore preflight within {PREFLIGHT_SECONDS:.0f} s",
        ) from None
    except BusError:
        if not required:
            return
        raise ApiError(
            grpc.StatusCode.UNAVAILABLE,
            "no protection service answers the restore preflight; restore options need it",
        ) from None
    try:
        result = PreflightResult.model_validate_json(raw)
    except ValidationError:
        failed = _failed(raw)
        raise ApiError(
            grpc.StatusCode.UNAVAILABLE, f"the restore preflight failed: {failed}"
        ) from None
    refuse(result)


def _failed(raw: bytes) -> str:
    try:
        return QueryFailed.model_validate_json(raw).error
    except ValidationError:
        return f"unreadable answer {raw[:200]!r}"


def refuse(result: PreflightResult) -> None:
    """Raise the preflight's refusal: invalid first, then not found, then conflicts."""
    if result.ok and not result.violations:
        return
    by_reason: dict[str, list[tuple[str, str]]] = {}
    for v in result.violations:
        by_reason.setdefault(v.reason, []).append((_request_field(v.field), v.message))
    if "invalid" in by_reason:
        raise invalid(by_reason["invalid"])
    if "not_found" in by_reason:
        text = "; ".join(m for _, m in by_reason["not_found"])
        raise ApiError(grpc.StatusCode.NOT_FOUND, f"restore refused: {text}")
    conflicts = by_reason.get("conflict", [])
    if conflicts:
        text = "; ".join(m for _, m in conflicts)
        raise ApiError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"restore refused, objects already in the target: {text}",
            violations=conflicts,
            reason="RESTORE_CONFLICT",
            metadata={"conflicts": str(len(conflicts))},
        )
    raise ApiError(grpc.StatusCode.FAILED_PRECONDITION, "restore refused by the preflight")
