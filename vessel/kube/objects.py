"""Kubernetes objects as Vessel passes them around, and typed views of the few kinds whose
fields the services read.

Objects stay plain JSON dicts (`KubeObject`): they come from and go back to the API
unchanged, and most code only moves them. Where code reads fields, a view names them once,
so a StorageClass's name or a claim's requested size is spelt in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

KubeObject = dict[str, Any]
"""A Kubernetes object as JSON: `apiVersion`, `kind`, `metadata`, and the rest."""


def event_on(
    involved: KubeObject, reason: str, message: str, *, component: str, type_: str = "Warning"
) -> KubeObject:
    """A Kubernetes Event on `involved`, to create (what `kubectl describe` shows)."""
    about = involved["metadata"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": f"{about['name']}.",
            "namespace": about.get("namespace", "default"),
        },
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": about["name"],
            "namespace": about.get("namespace"),
            "uid": about.get("uid"),
            "resourceVersion": about.get("resourceVersion"),
        },
        "reason": reason,
        "message": message,
        "type": type_,
        "count": 1,
        "source": {"component": component},
        "firstTimestamp": now,
        "lastTimestamp": now,
    }


def meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    found = obj.get("metadata")
    return found if isinstance(found, dict) else {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("name", ""))


def namespace_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("namespace", ""))


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(meta(obj).get("labels") or {})


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(meta(obj).get("annotations") or {})


@dataclass(frozen=True)
class StorageClassView:
    obj: KubeObject

    @property
    def name(self) -> str:
        return name_of(self.obj)

    @property
    def provisioner(self) -> str:
        return str(self.obj.get("provisioner", ""))

    @property
    def parameters(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.obj.get("parameters") or {}).items()}

    @property
    def reclaim_policy(self) -> str:
        return str(self.obj.get("reclaimPolicy") or "Delete")

    @property
    def binding_mode(self) -> str:
        return str(self.obj.get("volumeBindingMode") or "Immediate")

    @property
    def allows_expansion(self) -> bool:
        return bool(self.obj.get("allowVolumeExpansion"))

    @property
    def is_default(self) -> bool:
        marker = "storageclass.kubernetes.io/is-default-class"
        return annotations_of(self.obj).get(marker) == "true"


@dataclass(frozen=True)
class ClaimView:
    obj: KubeObject

    @property
    def name(self) -> str:
        return name_of(self.obj)

    @property
    def namespace(self) -> str:
        return namespace_of(self.obj)

    @property
    def uid(self) -> str:
        return str(meta(self.obj).get("uid", ""))

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.obj.get("spec") or {})

    @property
    def storage_class(self) -> str | None:
        found = self.spec.get("storageClassName")
        return None if found is None else str(found)

    @property
    def volume_name(self) -> str:
        return str(self.spec.get("volumeName") or "")

    @property
    def access_modes(self) -> list[str]:
        return [str(m) for m in self.spec.get("accessModes") or []]

    @property
    def requested_storage(self) -> str | None:
        found = ((self.spec.get("resources") or {}).get("requests") or {}).get("storage")
        return None if found is None else str(found)

    @property
    def phase(self) -> str:
        return str((self.obj.get("status") or {}).get("phase", ""))


@dataclass(frozen=True)
class PersistentVolumeView:
    obj: KubeObject

    @property
    def name(self) -> str:
        return name_of(self.obj)

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.obj.get("spec") or {})

    @property
    def claim_ref(self) -> tuple[str, str] | None:
        ref = self.spec.get("claimRef")
        if not isinstance(ref, dict):
            return None
        return str(ref.get("namespace", "")), str(ref.get("name", ""))

    @property
    def reclaim_policy(self) -> str:
        return str(self.spec.get("persistentVolumeReclaimPolicy") or "Delete")

    @property
    def phase(self) -> str:
        return str((self.obj.get("status") or {}).get("phase", ""))

    @property
    def storage_class(self) -> str | None:
        found = self.spec.get("storageClassName")
        return None if found is None else str(found)
