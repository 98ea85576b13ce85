"""A StorageClass's parameters, read once into requirements and an auto-grow policy."""

from __future__ import annotations

from services.provisioner.autogrow import AutoGrowPolicy, parse_autogrow
from services.provisioner.claims import ClaimRejected
from services.provisioner.matching import ParameterError, Requirements, parse_requirements
from vessel.kube.objects import KubeObject, StorageClassView


def class_policy(storage_class: KubeObject) -> tuple[Requirements, AutoGrowPolicy | None]:
    """Raises `ClaimRejected("InvalidParameters")` naming the class and the parameter."""
    view = StorageClassView(storage_class)
    try:
        requirements = parse_requirements(view.parameters)
        policy = parse_autogrow(view.parameters)
    except ParameterError as exc:
        raise ClaimRejected("InvalidParameters", f"StorageClass {view.name}: {exc}") from exc
    if policy is not None and not view.allows_expansion:
        raise ClaimRejected(
            "InvalidParameters",
            f"StorageClass {view.name}: autoGrowThresholdPercent needs allowVolumeExpansion: true",
        )
    return requirements, policy
