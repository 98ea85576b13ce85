"""Pure grouping of a namespace's objects into applications.

An object belongs, in order of precedence, to:
1. a user-defined app that selects it (computed first, see `userapps`);
2. the Helm release named by its `meta.helm.sh/release-name` annotation (a release's own
   `sh.helm.release.v1.*` Secrets belong to it too);
3. the app of its owner (a Pod of its Job, StatefulSet, DaemonSet or, through its
   ReplicaSet, Deployment; a Job of its CronJob), or for a Pod, of the workload whose
   selector matches it;
4. the app named by its `app.kubernetes.io/instance`, `app.kubernetes.io/name` or `app`
   label (the first one present); a claim without one joins the app of the workload that
   mounts it;
5. its namespace's app.
Apps other than Helm releases need a workload or a claim: configuration alone is not one.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from services.discovery import helm
from services.discovery.app_record import (
    Built,
    ClusterFacts,
    Grouping,
    Key,
    build_app,
    controller_owner,
    key_of,
    pod_spec,
)
from services.discovery.kinds import BY_KIND, WORKLOAD_KINDS, slim
from services.discovery.userapps import user_app
from vessel.contracts.commands import DefineApp
from vessel.contracts.events import AppRecord
from vessel.kube.objects import KubeObject, labels_of, meta
from vessel.kube.selectors import SelectorError, from_label_selector, matches

log = logging.getLogger("vessel.discovery")
APP_LABELS = ("app.kubernetes.io/instance", "app.kubernetes.io/name", "app")
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
_PRECEDENCE: dict[str, int] = {"helm": 0, "label": 1, "namespace": 2}
_APP_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
"""What an app name may be (a label value)."""


@dataclass(frozen=True)
class Assignment:
    grouping: Grouping
    name: str
    label: str | None = None
    release_namespace: str | None = None


@dataclass
class Group:
    members: list[KubeObject] = field(default_factory=list)
    grouping: Grouping = "namespace"
    label: str | None = None
    release_namespace: str | None = None


def app_label(obj: KubeObject) -> tuple[str, str] | None:
    labels = labels_of(obj)
    for key in APP_LABELS:
        if labels.get(key):
            return key, labels[key]
    return None


def workload_selects(selector: Any, labels: Mapping[str, str]) -> bool:
    """A workload's `spec.selector` (a LabelSelector dict) matches `labels`. An empty or
    missing selector matches nothing, as for a Deployment."""
    if not isinstance(selector, dict):
        return False
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return False
    try:
        requirements = from_label_selector(selector)
    except SelectorError:
        return False  # an expression the API server would have refused
    return matches(requirements, labels)


def mounts_claim(workload: KubeObject, claim: str) -> bool:
    """The workload's pods mount `claim`: by volume, or as a StatefulSet claim of any
    ordinal (also ordinals above the current replicas: scaled-down claims are kept)."""
    for volume in pod_spec(workload).get("volumes") or []:
        if (volume.get("persistentVolumeClaim") or {}).get("claimName") == claim:
            return True
    for template in (workload.get("spec") or {}).get("volumeClaimTemplates") or []:
        base = f"{template['metadata']['name']}-{meta(workload)['name']}-"
        if claim.startswith(base) and claim[len(base) :].isdigit():
            return True
    return False


class _Assigner:
    def __init__(self, namespace: str, objects: list[KubeObject]) -> None:
        self.namespace = namespace
        self.by_key = {key_of(o): o for o in objects}
        self.workloads = [o for o in objects if o["kind"] in WORKLOAD_KINDS]
        self.pods = [o for o in objects if o["kind"] == "Pod"]
        self.memo: dict[Key, Assignment] = {}

    def __call__(self, obj: KubeObject) -> Assignment:
        key = key_of(obj)
        found = self.memo.get(key)
        if found is None:
            self.memo[key] = Assignment("namespace", self.namespace)  # breaks owner cycles
            found = self.memo[key] = self._assign(obj)
        return found

    def _assign(self, obj: KubeObject) -> Assignment:
        annotations = meta(obj).get("annotations") or {}
        release = annotations.get(helm.RELEASE_ANNOTATION)
        if release and _APP_NAME.match(release):  # an annotation, so not checked by the API
            release_ns = annotations.get(helm.RELEASE_NAMESPACE_ANNOTATION) or self.namespace
            return Assignment("helm", release, release_namespace=release_ns)
        if helm.is_release_secret(obj):
            parsed = helm.parse_name(meta(obj)["name"])
            name = labels_of(obj).get("name") or (parsed[0] if parsed else None)
            if name:
                return Assignment("helm", name, release_namespace=self.namespace)
        inherited = self._from_owner(obj)
        if inherited is not None:
            return inherited
        label = app_label(obj)
        if label is not None:
            return Assignment("label", label[1], label=label[0])
        if obj["kind"] == "PersistentVolumeClaim":
            name = meta(obj)["name"]
            for user in (*self.workloads, *self.pods):
                if mounts_claim(user, name):
                    return self(user)
        return Assignment("namespace", self.namespace)

    def _from_owner(self, obj: KubeObject) -> Assignment | None:
        owner = controller_owner(obj)
        if owner is not None:
            target = self.by_key.get((str(owner.get("kind")), str(owner.get("name"))))
            if target is not None:
                return self(target)
            if owner.get("kind") == "ReplicaSet":  # ReplicaSets are not watched
                prefix = str(owner.get("name")).rpartition("-")[0]
                target = self.by_key.get(("Deployment", prefix))
                if target is not None:
                    return self(target)
        if obj["kind"] == "Pod":
            labels = labels_of(obj)
            for workload in self.workloads:
                if workload_selects((workload.get("spec") or {}).get("selector"), labels):
                    return self(workload)
        return None


def group_namespace(
    facts: ClusterFacts,
    namespace: str,
    objects: list[KubeObject],
    *,
    claimed: frozenset[Key] = frozenset(),
    reserved: frozenset[str] = frozenset(),
) -> dict[str, Built]:
    """Automatic apps of one namespace keyed by app id. `claimed` objects belong to
    user-defined apps; `reserved` names are theirs (colliding groups fall back to the
    namespace's app)."""
    if namespace in SYSTEM_NAMESPACES:
        return {}
    assign = _Assigner(namespace, objects)
    groups: dict[str, Group] = defaultdict(Group)
    for obj in objects:
        if key_of(obj) in claimed:
            continue
        found = assign(obj)
        if found.name in reserved:
            if namespace in reserved:
                continue
            found = Assignment("namespace", namespace)
        group = groups[found.name]
        group.members.append(obj)
        if _PRECEDENCE[found.grouping] < _PRECEDENCE[group.grouping]:
            group.grouping = found.grouping
        if found.release_namespace:
            group.release_namespace = found.release_namespace
        if found.label and (
            group.label is None or APP_LABELS.index(found.label) < APP_LABELS.index(group.label)
        ):
            group.label = found.label  # the more specific label wins
    apps: dict[str, Built] = {}
    for name, group in groups.items():
        kinds = {m["kind"] for m in group.members}
        if group.grouping != "helm" and not kinds & (WORKLOAD_KINDS | {"PersistentVolumeClaim"}):
            continue  # config without anything running is not an application
        release = None
        if group.grouping == "helm":
            release = facts.releases(group.release_namespace or namespace, name)
        try:
            built = build_app(
                facts,
                namespace,
                name,
                group.grouping,
                group.members,
                selector={group.label: name} if group.grouping == "label" and group.label else {},
                release=release,
            )
        except ValidationError as exc:  # one odd object must not stop the namespace
            log.warning("app %s/%s left out: %s", namespace, name, exc)
            continue
        apps[built.record.id] = built
    return apps


def releases_in(objects: Iterable[KubeObject]) -> Callable[[str, str], Any]:
    """A release lookup over slimmed objects (every namespace)."""
    by_ns: dict[str, list[KubeObject]] = defaultdict(list)
    for obj in objects:
        if helm.is_release_secret(obj):
            by_ns[meta(obj).get("namespace", "")].append(obj)
    latest = {ns: helm.latest_releases(secrets) for ns, secrets in by_ns.items()}
    return lambda ns, name: latest.get(ns, {}).get(name)


def group_apps(
    cluster: str,
    objects: list[KubeObject],
    *,
    now: datetime | None = None,
    definitions: Iterable[DefineApp] = (),
    pending_grace: float = 300.0,
) -> dict[str, AppRecord]:
    """Every app of one cluster from raw objects of any kind (slimmed here first)."""
    slimmed = [slim(BY_KIND[o["kind"]], o) if o.get("kind") in BY_KIND else o for o in objects]
    facts = ClusterFacts(
        cluster,
        pvs={meta(o)["name"]: o for o in slimmed if o["kind"] == "PersistentVolume"},
        classes={meta(o)["name"]: o for o in slimmed if o["kind"] == "StorageClass"},
        releases=releases_in(slimmed),
        pending_grace=pending_grace,
    )
    if now is not None:
        facts.now = now
    by_ns: dict[str, list[KubeObject]] = defaultdict(list)
    for obj in slimmed:
        ns = meta(obj).get("namespace")
        if ns:
            by_ns[ns].append(obj)
    apps: dict[str, AppRecord] = {}
    claimed: dict[str, set[Key]] = defaultdict(set)
    reserved: dict[str, set[str]] = defaultdict(set)
    for definition in definitions:
        built, selected = user_app(facts, definition, lambda ns: by_ns.get(ns, []))
        apps[built.record.id] = built.record
        reserved[definition.namespace].add(definition.name)
        for ns, kind, name in selected:
            claimed[ns].add((kind, name))
    for ns, objs in by_ns.items():
        found = group_namespace(
            facts, ns, objs, claimed=frozenset(claimed[ns]), reserved=frozenset(reserved[ns])
        )
        apps.update({app_id: built.record for app_id, built in found.items()})
    return apps
