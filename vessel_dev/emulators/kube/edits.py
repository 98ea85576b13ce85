"""Small helpers for emulated controllers writing through ``Store.patch``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vessel.kube.objects import KubeObject


def edit(change: Callable[[KubeObject], Any]) -> Callable[[KubeObject], KubeObject]:
    """Adapt an in-place edit of the (already copied) object to Store.patch's contract."""

    def apply(obj: KubeObject) -> KubeObject:
        change(obj)
        return obj

    return apply


def set_status(obj: KubeObject, **fields: Any) -> None:
    """Set status fields in place; a None value removes the field."""
    status = obj.setdefault("status", {})
    for key, value in fields.items():
        if value is None:
            status.pop(key, None)
        else:
            status[key] = value


def drop_finalizer(name: str) -> Callable[[KubeObject], KubeObject]:
    def change(obj: KubeObject) -> None:
        obj["metadata"]["finalizers"] = [
            f for f in obj["metadata"].get("finalizers") or [] if f != name
        ]

    return edit(change)
