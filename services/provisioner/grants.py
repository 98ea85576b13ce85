"""Cross-namespace clones: a source object grants namespaces the right to clone it.

A claim whose `dataSourceRef` names a PersistentVolumeClaim or VolumeSnapshot in another
namespace (`dataSourceRef.namespace`) is cloned only when that source object carries the
annotation `vessel.io/clone-grant-namespaces`, a comma-separated list of the namespaces
allowed to clone it (`*`: any). Without a grant the claim stays Pending with a Warning Event
`CloneNotGranted` naming the source and the annotation to set, and is retried when the
source changes (a watch of claims and VolumeSnapshots) or at the next resync.

This mirrors Kubernetes' ReferenceGrant (gateway.networking.k8s.io), which is what the
CrossNamespaceVolumeDataSource feature checks: the owner of the source, not the cloner,
decides who may read it. It is kept as an annotation on the source because the API servers
Vessel targets may lack the Gateway API CRD.
"""

from __future__ import annotations

from services.provisioner.claims import ClaimRejected, needs_volume
from vessel.kube.objects import KubeObject

GRANT_ANNOTATION = "vessel.io/clone-grant-namespaces"


def granted_namespaces(source: KubeObject) -> set[str]:
    text = (source["metadata"].get("annotations") or {}).get(GRANT_ANNOTATION) or ""
    return {part.strip() for part in str(text).split(",") if part.strip()}


def check_grant(source: KubeObject, kind: str, target_namespace: str) -> None:
    """Refuse (`CloneNotGranted`) unless `source` grants clones into `target_namespace`."""
    meta = source["metadata"]
    if meta["namespace"] == target_namespace:
        return
    granted = granted_namespaces(source)
    if "*" in granted or target_namespace in granted:
        return
    have = f" (it lists: {', '.join(sorted(granted))})" if granted else ""
    raise ClaimRejected(
        "CloneNotGranted",
        f"dataSourceRef {kind} {meta['namespace']}/{meta['name']} does not grant clones into "
        f"namespace {target_namespace}{have}: annotate it "
        f"{GRANT_ANNOTATION}={target_namespace} (comma-separated namespaces, or '*')",
    )


def waits_on(claim: KubeObject, namespace: str, name: str | None = None) -> bool:
    """Whether a pending claim clones from an object in `namespace` (named `name`)."""
    if not needs_volume(claim):
        return False
    spec = claim.get("spec") or {}
    ref = spec.get("dataSourceRef") or spec.get("dataSource") or {}
    if not ref.get("name") or (name is not None and ref["name"] != name):
        return False
    return str(ref.get("namespace") or claim["metadata"]["namespace"]) == namespace
