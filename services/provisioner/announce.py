"""What the provisioner tells the world: bus events with deterministic ids, Kubernetes Events.

A state change is published *before* it is recorded, so a crash in between repeats the
publication instead of losing it; the event id derives from the change (`once_key`), so
the repeat carries the same id: JetStream drops it within its duplicate window and
consumers de-duplicate on the id after that.
"""

from __future__ import annotations

import logging
import uuid

from vessel.bus.codec import encode
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.events import VolumeFailed
from vessel.contracts.models import Payload
from vessel.contracts.subjects import Message
from vessel.kube.client import KubeCluster
from vessel.kube.errors import KubeError
from vessel.kube.objects import KubeObject
from vessel.telemetry.logs import child_traceparent

log = logging.getLogger("vessel.provisioner")
COMPONENT = "vessel-provisioner"
_IDS = uuid.UUID("6f1d7f5e-3c57-4f0e-9a55-7a2b8f0c2d11")


class Announcer:
    def __init__(self, bus: Bus, kube: KubeCluster, cluster: str) -> None:
        self.bus = bus
        self.kube = kube
        self.cluster = cluster
        self._warned: dict[tuple[str, str], str] = {}

    async def publish(
        self, message: Message, payload: Payload, once_key: str, subject: str | None = None
    ) -> None:
        event = encode(message, payload, self.bus.source, subject, child_traceparent())
        event_id = str(uuid.uuid5(_IDS, f"{message.type}/{self.cluster}/{once_key}"))
        await self.bus.publish_raw(
            message.subject_for(self.cluster), event.model_copy(update={"id": event_id})
        )

    def claim_subject(self, namespace: str, claim: str) -> str:
        return f"/clusters/{self.cluster}/namespaces/{namespace}/pvcs/{claim}"

    async def event(
        self,
        obj: KubeObject,
        api_version: str,
        kind: str,
        reason: str,
        message: str,
        *,
        warning: bool = True,
    ) -> bool:
        """Record a Kubernetes Event on `obj` once per (object, reason, message); True if new."""
        uid = str(obj["metadata"].get("uid", ""))
        if self._warned.get((uid, reason)) == message:
            return False
        self._warned[(uid, reason)] = message
        meta = obj["metadata"]
        where = f"{kind} {meta.get('namespace', '')}/{meta['name']}"
        (log.warning if warning else log.info)("%s: %s: %s", where, reason, message)
        try:
            await self.kube.emit_event(
                {**obj, "apiVersion": api_version, "kind": kind},
                reason,
                message,
                component=COMPONENT,
                type_="Warning" if warning else "Normal",
            )
        except KubeError as exc:  # an Event is advice: never fail the work for it
            log.warning("could not record event %s on %s: %s", reason, where, exc)
        return True

    def forget(self, uid: str) -> None:
        for key in [k for k in self._warned if k[0] == uid]:
            del self._warned[key]

    async def claim_failed(self, claim: KubeObject, reason: str, message: str) -> None:
        """A claim cannot be served as asked: Event on it and `volume.failed` (once each)."""
        if not await self.event(claim, "v1", "PersistentVolumeClaim", reason, message):
            return
        meta = claim["metadata"]
        await self.bus.publish(
            subjects.VOLUME_FAILED,
            VolumeFailed(
                cluster=self.cluster,
                namespace=meta["namespace"],
                claim=meta["name"],
                reason=reason,
                message=message,
            ),
            cluster=self.cluster,
            subject=self.claim_subject(meta["namespace"], meta["name"]),
        )
