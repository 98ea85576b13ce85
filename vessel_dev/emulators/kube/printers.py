"""Table columns per kind, as the real server's printers (and the snapshot CRDs) define them.

``kubectl get`` asks the server for a ``meta.k8s.io/v1`` Table and prints its cells as
they are, so the columns here follow kube-apiserver's internal printers and the
external-snapshotter CRDs' printer columns; the cells come from ``cells.py``. kubectl
hides the priority-1 ("wide") columns unless ``-o wide``. Kinds without a printer here
get Name and Age.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vessel.kube.objects import KubeObject
from vessel_dev.emulators.kube import cells
from vessel_dev.emulators.kube.kinds import SNAPSHOT

Cells = Callable[[KubeObject], list[Any]]


@dataclass(frozen=True, slots=True)
class Printer:
    columns: tuple[str, ...]  # "Name[:type][+]": "+" marks a wide (priority 1) column
    row: Cells

    def definitions(self) -> list[KubeObject]:
        result = []
        for spec in self.columns:
            wide = spec.endswith("+")
            name, _, kind = spec.rstrip("+").partition(":")
            result.append(
                {
                    "name": name,
                    "type": kind or "string",
                    "format": "name" if name == "Name" else "",
                    "description": "",
                    "priority": 1 if wide else 0,
                }
            )
        return result


def _named(*columns: str, row: Cells) -> Printer:
    """Most printers: a Name column first, then ``cells``."""
    return Printer(("Name", *columns), lambda o: [cells.name(o), *row(o)])


GENERIC = _named("Age", row=lambda obj: [cells.age(obj)])
_CLAIM = ("Status", "Volume", "Capacity", "Access Modes", "StorageClass")
_VOLUME = ("Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim", "StorageClass")
_SNAPSHOT = ("ReadyToUse:boolean", "SourcePVC", "SourceSnapshotContent", "RestoreSize")
_CONTENT = ("ReadyToUse:boolean", "RestoreSize:integer", "DeletionPolicy", "Driver")
_BY_RESOURCE: dict[tuple[str, str], Printer] = {
    ("", "persistentvolumeclaims"): _named(
        *_CLAIM, "VolumeAttributesClass", "Age", "VolumeMode+", row=cells.claim
    ),
    ("", "persistentvolumes"): _named(
        *_VOLUME, "VolumeAttributesClass", "Reason", "Age", "VolumeMode+", row=cells.volume
    ),
    ("", "pods"): _named(
        "Ready",
        "Status",
        "Restarts:integer",
        "Age",
        "IP+",
        "Node+",
        "Nominated Node+",
        "Readiness Gates+",
        row=cells.pod,
    ),
    ("", "namespaces"): _named("Status", "Age", row=lambda o: [cells.phase(o), cells.age(o)]),
    ("", "configmaps"): _named(
        "Data:integer", "Age", row=lambda o: [len(o.get("data") or {}), cells.age(o)]
    ),
    ("", "secrets"): _named(
        "Type",
        "Data:integer",
        "Age",
        row=lambda o: [o.get("type", "Opaque"), len(o.get("data") or {}), cells.age(o)],
    ),
    ("apps", "deployments"): _named(
        "Ready",
        "Up-to-date:integer",
        "Available:integer",
        "Age",
        "Containers+",
        "Images+",
        "Selector+",
        row=cells.deployment,
    ),
    ("apps", "statefulsets"): _named(
        "Ready", "Age", "Containers+", "Images+", row=cells.statefulset
    ),
    # A default class shows as "name (default)", so this printer builds its own Name cell.
    ("storage.k8s.io", "storageclasses"): Printer(
        (
            "Name",
            "Provisioner",
            "ReclaimPolicy",
            "VolumeBindingMode",
            "AllowVolumeExpansion",
            "Age",
        ),
        cells.storage_class,
    ),
    # Events lead with Last Seen; their name is a wide column.
    ("", "events"): Printer(
        (
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "Subobject+",
            "Source+",
            "Message",
            "First Seen+",
            "Count:integer+",
            "Name+",
        ),
        cells.event,
    ),
    (SNAPSHOT, "volumesnapshots"): _named(
        *_SNAPSHOT, "SnapshotClass", "SnapshotContent", "CreationTime", "Age", row=cells.snapshot
    ),
    (SNAPSHOT, "volumesnapshotcontents"): _named(
        *_CONTENT,
        "VolumeSnapshotClass",
        "VolumeSnapshot",
        "VolumeSnapshotNamespace",
        "Age",
        row=cells.snapshot_content,
    ),
    (SNAPSHOT, "volumesnapshotclasses"): _named(
        "Driver",
        "DeletionPolicy",
        "Age",
        row=lambda o: [o.get("driver"), o.get("deletionPolicy"), cells.age(o)],
    ),
}


def printer(group: str, plural: str) -> Printer:
    return _BY_RESOURCE.get((group, plural), GENERIC)
