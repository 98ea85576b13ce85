"""A StorageClass's parameters, read once into requirements and an auto-grow policy."""

from __future__ import annotations

from typing import Any

from services.provisioner.autogrow import AutoGrowPolicy, parse_autogrow
from services.provisioner.claims import ClaimRejected
from services.provisioner.matching import ParameterError, Requirements, parse_requirements

Obj = dict[str, Any]


def class_policy(storage_class: Obj) -> tuple[Requirements, AutoGrowPolicy | None]:
    """Raises `ClaimRejected("InvalidParameters")` naming the class and the parameter."""
    name = storage_class["metadata"]["name"]
    parameters = storage_class.get("parameters") or {}
    try:
        requirements = parse_requirements(parameters)
        policy = parse_autogrow(parameters)
    except ParameterError as exc:
        raise ClaimRejected("InvalidParameters", f"StorageClass {name}: {exc}") from exc
    if policy is not None and not allows_expansion(storage_class):
        raise ClaimRejected(
            "InvalidParameters",
            f"StorageClass {name}: autoGrowThresholdPercent needs allowVolumeExpansion: true",
        )
    return requirements, policy


def allows_expansion(storage_class: Obj) -> bool:
    return storage_class.get("allowVolumeExpansion") is True
