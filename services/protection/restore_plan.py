"""The restore plan: which of a backup's objects a restore writes, changed how, and in what
order.

Pure functions over the backup's sanitized objects, so the restore command and its
preflight query agree on exactly the same plan. Filters and transform matches look at the
object as it was backed up (source namespace, original labels); mapping happens before
transforms, so a patch sees and can change the object as it will be written.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import jsonpatch
import jsonpointer

from services.protection.resources import (
    CUSTOM_RANK,
    custom_kinds,
    is_workload,
    remap_namespace,
    restore_rank,
)
from vessel.contracts.protection import ResourceFilter, RestoreOptions, Transform
from vessel.kube.objects import ClaimView, KubeObject, name_of

STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"


class TransformError(ValueError):
    """Transforms that do not apply; `failures` pairs each transform's index with why."""

    def __init__(self, failures: list[tuple[int, str]]) -> None:
        self.failures = failures
        super().__init__("; ".join(f"transforms[{i}]: {why}" for i, why in failures))


@dataclass(frozen=True)
class ClaimTarget:
    """Where a backed-up claim (and so its volume) is restored."""

    namespace: str
    name: str
    storage_class: str | None


@dataclass
class RestorePlan:
    objects: list[KubeObject] = field(default_factory=list)
    claims: dict[tuple[str, str], ClaimTarget] = field(default_factory=dict)
    """Backed-up (namespace, claim) -> where it is restored; claims filtered out are absent."""
    custom: frozenset[tuple[str, str]] = frozenset()

    def after_data(self, obj: KubeObject) -> bool:
        """Workloads and custom resources wait until every volume holds its data."""
        return is_workload(obj) or restore_rank(obj, self.custom) == CUSTOM_RANK

    @property
    def setup(self) -> list[KubeObject]:
        return [o for o in self.objects if not self.after_data(o)]

    @property
    def last(self) -> list[KubeObject]:
        return [o for o in self.objects if self.after_data(o)]


def describe(obj: KubeObject) -> str:
    """`Kind namespace/name` (or `Kind name` for cluster-scoped objects), for messages."""
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind', '?')} {where}{meta.get('name', '?')}"


def source_namespace(obj: KubeObject) -> str:
    meta = obj.get("metadata") or {}
    if obj.get("kind") == "Namespace":
        return str(meta.get("name") or "")
    return str(meta.get("namespace") or "")


def matches(selector: ResourceFilter, obj: KubeObject) -> bool:
    """Whether `selector` selects `obj` (as backed up); an empty field matches anything."""
    meta = obj.get("metadata") or {}
    if selector.kinds and obj.get("kind") not in selector.kinds:
        return False
    if selector.names and meta.get("name") not in selector.names:
        return False
    if selector.namespaces and source_namespace(obj) not in selector.namespaces:
        return False
    labels = meta.get("labels") or {}
    return all(labels.get(key) == value for key, value in selector.labels.items())


def selected(obj: KubeObject, options: RestoreOptions) -> bool:
    """Included when `include` is empty or one of its filters matches, unless an
    `exclude` filter matches."""
    if options.include and not any(matches(f, obj) for f in options.include):
        return False
    return not any(matches(f, obj) for f in options.exclude)


def map_storage_class(obj: KubeObject, mapping: dict[str, str]) -> KubeObject:
    if obj.get("kind") != "PersistentVolumeClaim" or not mapping:
        return obj
    spec = obj.setdefault("spec", {})
    if spec.get("storageClassName"):
        spec["storageClassName"] = mapping.get(spec["storageClassName"], spec["storageClassName"])
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if annotations.get(STORAGE_CLASS_ANNOTATION):
        old = annotations[STORAGE_CLASS_ANNOTATION]
        annotations[STORAGE_CLASS_ANNOTATION] = mapping.get(old, old)
    return obj


def apply_transform(obj: KubeObject, transform: Transform) -> KubeObject:
    """`obj` patched op by op, so a failure names the op; ValueError names object and op."""
    patched = copy.deepcopy(obj)
    for op in transform.patch:
        what = f"op {op.get('op', '?')} {op.get('path', '?')}"
        try:
            patched = jsonpatch.JsonPatch([op]).apply(patched)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise ValueError(f"{what} does not apply to {describe(obj)}: {exc}") from exc
        except (TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"{what} is malformed for {describe(obj)}: {exc}") from exc
    meta = patched.get("metadata") if isinstance(patched, dict) else None
    if not isinstance(meta, dict) or not meta.get("name") or not patched.get("kind"):
        raise ValueError(f"the patch leaves {describe(obj)} without kind or metadata.name")
    return patched


def namespace_object(name: str) -> KubeObject:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def build_plan(
    objects: list[KubeObject], namespace_mapping: dict[str, str], options: RestoreOptions
) -> RestorePlan:
    """The ordered objects to write. Raises TransformError listing every transform that
    does not apply to an object it selects."""
    custom = custom_kinds(objects)
    plan = RestorePlan(custom=custom)
    failures: dict[int, str] = {}
    chosen: list[KubeObject] = []
    for source in objects:
        if not selected(source, options):
            continue
        obj = remap_namespace(source, namespace_mapping)
        obj = map_storage_class(obj, options.storage_class_mapping)
        for index, transform in enumerate(options.transforms):
            if index in failures or not matches(transform.match, source):
                continue
            try:
                obj = apply_transform(obj, transform)
            except ValueError as exc:
                failures[index] = str(exc)
        chosen.append(obj)
        if source.get("kind") == "PersistentVolumeClaim":
            target = ClaimView(obj)
            plan.claims[(source_namespace(source), name_of(source))] = ClaimTarget(
                namespace=target.namespace, name=target.name, storage_class=target.storage_class
            )
    if failures:
        raise TransformError(sorted(failures.items()))
    declared = {o["metadata"]["name"] for o in chosen if o.get("kind") == "Namespace"}
    used = {o["metadata"]["namespace"] for o in chosen if o["metadata"].get("namespace")}
    chosen.extend(namespace_object(ns) for ns in sorted(used - declared))
    plan.objects = sorted(chosen, key=lambda o: restore_rank(o, custom))
    return plan
