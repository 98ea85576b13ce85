"""``meta.k8s.io`` Table responses: what ``kubectl get`` asks for to print its columns.

kubectl sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io, ...,
application/json``; the real server then answers lists, single objects and every watch
event's object as a Table whose rows carry the printer's cells (``printers.py``) and, as
``includeObject`` asks (default ``Metadata``), the object's metadata or the object itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from vessel.kube.objects import KubeObject
from vessel_dev.emulators.kube import errors
from vessel_dev.emulators.kube.kinds import Kind
from vessel_dev.emulators.kube.printers import printer

Render = Callable[[KubeObject], KubeObject]
_GROUP = "meta.k8s.io"
_VERSIONS = ("v1", "v1beta1")
_INCLUDE = ("None", "Metadata", "Object")


def table_version(accept: str) -> str | None:
    """The meta.k8s.io version of the first Table media range in ``accept``, if any."""
    for media_range in accept.split(","):
        _, *raw = (part.strip() for part in media_range.split(";"))
        params = dict(p.partition("=")[::2] for p in raw)
        if params.get("as") == "Table" and params.get("g") == _GROUP:
            if params.get("v") in _VERSIONS:
                return params["v"]
    return None


def include_object(query: Mapping[str, str]) -> str:
    value = query.get("includeObject") or "Metadata"
    if value not in _INCLUDE:
        raise errors.bad_request(
            f'includeObject: Unsupported value: "{value}": supported values: '
            + ", ".join(f'"{v}"' for v in _INCLUDE)
        )
    return value


def _row_object(obj: KubeObject, include: str) -> KubeObject | None:
    if include == "Object":
        return obj
    if include == "None":
        return None
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"{_GROUP}/v1",
        "metadata": obj.get("metadata") or {},
    }


@dataclass(frozen=True, slots=True)
class TableRequest:
    version: str
    include: str  # None, Metadata or Object

    def of_list(self, kind: Kind, objs: Iterable[KubeObject], list_meta: KubeObject) -> KubeObject:
        shown = printer(kind.group, kind.plural)
        rows = []
        for obj in objs:
            row: KubeObject = {"cells": shown.row(obj)}
            embedded = _row_object(obj, self.include)
            if embedded is not None:
                row["object"] = embedded
            rows.append(row)
        return {
            "kind": "Table",
            "apiVersion": f"{_GROUP}/{self.version}",
            "metadata": list_meta,
            "columnDefinitions": shown.definitions(),
            "rows": rows,
        }

    def of_object(self, kind: Kind, obj: KubeObject) -> KubeObject:
        rv = (obj.get("metadata") or {}).get("resourceVersion", "")
        return self.of_list(kind, [obj], {"resourceVersion": rv})


def requested(accept: str, query: Mapping[str, str]) -> TableRequest | None:
    """The Table this request asks for, or None when it wants the objects themselves."""
    version = table_version(accept)
    return None if version is None else TableRequest(version, include_object(query))
