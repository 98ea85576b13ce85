"""Auto-grow policy from StorageClass parameters, and the size it asks for. Pure.

`autoGrowThresholdPercent` (1-99) turns it on: a volume whose used bytes reach that share
of its size grows by `autoGrowStep` (a quantity such as `1Gi`, or a percentage of the
current size such as `20%`; default `10%`), rounded up to whole MiB, never beyond
`autoGrowMaxSize` (default: no limit but the pool's free space).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from services.provisioner.matching import ParameterError
from vessel.kube.client import quantity_bytes

MiB = 1 << 20


@dataclass(frozen=True)
class AutoGrowPolicy:
    threshold_percent: float
    step_bytes: int | None = None
    step_percent: float | None = None
    max_bytes: int | None = None


def _quantity(name: str, text: str) -> int:
    try:
        value = quantity_bytes(text.strip())
    except (ValueError, TypeError) as exc:
        raise ParameterError(f"{name}: {text!r} is not a Kubernetes quantity: {exc}") from exc
    if value <= 0:
        raise ParameterError(f"{name}: {text!r} must be positive")
    return value


def parse_autogrow(parameters: Mapping[str, str] | None) -> AutoGrowPolicy | None:
    params = {str(k): str(v) for k, v in (parameters or {}).items()}
    threshold_text = params.get("autoGrowThresholdPercent")
    if threshold_text is None:
        others = [k for k in ("autoGrowStep", "autoGrowMaxSize") if k in params]
        if others:
            raise ParameterError(f"{', '.join(others)} needs autoGrowThresholdPercent")
        return None
    try:
        threshold = float(threshold_text)
    except ValueError as exc:
        raise ParameterError(
            f"autoGrowThresholdPercent: {threshold_text!r} is not a number"
        ) from exc
    if not 1 <= threshold <= 99:
        raise ParameterError(f"autoGrowThresholdPercent: {threshold_text} is not within 1-99")
    step_text = params.get("autoGrowStep", "10%").strip()
    step_bytes, step_percent = None, None
    if step_text.endswith("%"):
        try:
            step_percent = float(step_text[:-1])
        except ValueError as exc:
            raise ParameterError(f"autoGrowStep: {step_text!r} is not a percentage") from exc
        if not 0 < step_percent <= 1000:
            raise ParameterError(f"autoGrowStep: {step_text} is not within 0-1000%")
    else:
        step_bytes = _quantity("autoGrowStep", step_text)
    max_text = params.get("autoGrowMaxSize")
    max_bytes = _quantity("autoGrowMaxSize", max_text) if max_text is not None else None
    return AutoGrowPolicy(threshold, step_bytes, step_percent, max_bytes)


def grown_size(policy: AutoGrowPolicy, size_bytes: int, used_bytes: int) -> int | None:
    """The size to grow to, or None: below the threshold, or at the maximum already."""
    if size_bytes <= 0 or used_bytes * 100 < policy.threshold_percent * size_bytes:
        return None
    if policy.step_bytes is not None:
        step = policy.step_bytes
    else:
        step = math.ceil(size_bytes * (policy.step_percent or 0) / 100)
    target = math.ceil((size_bytes + max(step, 1)) / MiB) * MiB
    if policy.max_bytes is not None:
        target = min(target, policy.max_bytes)
    return target if target > size_bytes else None


def quantity_text(size_bytes: int) -> str:
    """The shortest exact Kubernetes quantity for a byte count ("1Gi", "1536Mi", "1000")."""
    for suffix, unit in (("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if size_bytes % unit == 0 and size_bytes >= unit:
            return f"{size_bytes // unit}{suffix}"
    return str(size_bytes)
