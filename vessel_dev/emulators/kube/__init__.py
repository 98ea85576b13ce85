"""An in-process Kubernetes API server emulator for tests and local runs.

No Python library serves the Kubernetes REST API faithfully enough for the official
client's informers, watches and patches, so Vessel carries its own. ``KubeEmulator``
runs an aiohttp server on its own thread and event loop; the official ``kubernetes``
client and kubectl talk to it unmodified over HTTPS using the kubeconfig it writes, which
carries the instance's own CA (``tls.py``; ``tls=False`` serves plain HTTP instead).

Served: core/v1, apps/v1, batch/v1, storage.k8s.io/v1, rbac.authorization.k8s.io/v1,
networking.k8s.io/v1 and snapshot.storage.k8s.io/v1 kinds (see ``kinds.py``) with
discovery, bearer-token auth, create/get/list/replace/patch/delete, the status
subresource, label and field selectors, pagination, finalizers, namespace cascade,
watches with history, bookmarks and 410 Expired, ``meta.k8s.io/v1`` Table responses for
``kubectl get`` (``tables.py``), and emulated controllers (``controllers.py``).

Approximations, where a real API server behaves differently:

* Strategic merge patch merges lists of objects by ``name`` only and replaces every
  other list; the per-field merge keys and strategies of the real schemas are not known
  (``patch.py``). Server-side apply (``application/apply-patch+yaml``) is rejected (415).
* Pages after the first of a paginated list read the current state, not a snapshot at
  the first page's resourceVersion (``listing.py``); continue tokens never expire.
* Bodies are not validated against the OpenAPI schemas; only metadata.name presence and
  the namespace are checked. A body namespace that disagrees with the URL is rejected
  with 422 Invalid (the real server answers 400 BadRequest).
* DELETE always returns the object (200), where the real server returns a Success
  Status for several built-in kinds. There is no garbage collector: ownerReferences
  are never followed, and propagationPolicy / gracePeriodSeconds are ignored.
* Watching from a resourceVersion newer than the store's streams events after it
  instead of waiting; sendInitialEvents/resourceVersionMatch are ignored.
* Namespaces have no ``spec.finalizers``; a deleted namespace is removed as soon as its
  contents are gone (objects held by finalizers keep it Terminating until then).
* Create resets ``status`` of kinds with a status subresource, as the real server does,
  then sets phase Active/Pending for namespaces/claims/pods and Available for PVs.
  Other defaulting (e.g. ``volumeMode: Filesystem``) is not applied.
* Controller effects (``controllers.py``) are applied synchronously after each write,
  before the response is sent, so callers never observe the short-lived intermediate
  states of a real cluster; they still arrive as ordinary MODIFIED/DELETED events.
  DaemonSets, Jobs and CronJobs have no emulated controller.
* ResourceQuotas are stored and served, never enforced: nothing is refused for a quota.
* No request log is kept, so memory does not grow with traffic; the event history is
  bounded by ``history``.
* Only JSON is spoken: responses are JSON whatever the Accept header asks for (except
  the protobuf ``/openapi/v2`` kubectl asks for), and request bodies must be JSON.
* Table columns follow the real printers for claims, volumes, pods, deployments,
  statefulsets, namespaces, configmaps, secrets, storage classes, events and the snapshot
  kinds (``printers.py``); every other kind gets Name and Age, where the real server has
  a printer of its own for each built-in kind.
* ``/openapi/v2`` has no schema definitions, only one PATCH operation per kind without
  a ``fieldValidation`` parameter (``openapi.py``), and ``/openapi/v3`` is not served: so
  ``kubectl apply`` validates nothing and builds its patches from its compiled-in types,
  and ``kubectl explain`` fails. ``fieldValidation`` is ignored: unknown fields are kept.
* Aggregated discovery (``apidiscovery.k8s.io/v2``) is not served; clients, kubectl
  included, fall back to the per-group discovery documents.
* kubectl's own ``exec`` (SPDY or ``v5.channel.k8s.io``), ``logs`` and ``port-forward``
  are not served; ``pods/exec`` speaks ``v4.channel.k8s.io`` only (``exec.py``).
"""

from vessel_dev.emulators.kube.emulator import KubeEmulator

__all__ = ["KubeEmulator"]
