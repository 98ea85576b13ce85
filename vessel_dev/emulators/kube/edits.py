"""Small helpers for emulated controllers writing through ``Store.patch``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]


def edit(change: Callable[[Obj], Any]) -> Callable[[Obj], Obj]:
    """Adapt an in-place edit of the (already copied) object to Store.patch's contract."""

    def apply(obj: Obj) -> Obj:
        change(obj)
        return obj

    return apply


def set_status(obj: Obj, **fields: Any) -> None:
    """Set status fields in place; a None value removes the field."""
    status = obj.setdefault("status", {})
    for key, value in fields.items():
        if value is None:
            status.pop(key, None)
        else:
            status[key] = value


def drop_finalizer(name: str) -> Callable[[Obj], Obj]:
    def change(obj: Obj) -> None:
        obj["metadata"]["finalizers"] = [
            f for f in obj["metadata"].get("finalizers") or [] if f != name
        ]

    return edit(change)
