"""Conversions between contract models and the messages of vessel.proto (apps and
operations; every API answers with an `Operation`)."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from vessel.api.v1 import vessel_pb2 as pb
from vessel.contracts.events import AppRecord
from vessel.contracts.models import ResourceRef
from vessel.contracts.operations import Operation


def app_message(app: AppRecord) -> pb.App:
    def ref(r: ResourceRef) -> pb.ResourceRef:
        return pb.ResourceRef(
            api_version=r.api_version, kind=r.kind, name=r.name, namespace=r.namespace or ""
        )

    return pb.App(
        id=app.id,
        cluster=app.cluster,
        namespace=app.namespace,
        name=app.name,
        state=app.state,
        grouping=app.grouping,
        selector=app.selector,
        workloads=[ref(w) for w in app.workloads],
        resources=[ref(r) for r in app.resources],
        claims=[
            pb.Claim(
                name=c.name,
                storage_class=c.storage_class or "",
                requested_bytes=c.requested_bytes,
                volume_name=c.volume_name or "",
                phase=c.phase,
            )
            for c in app.claims
        ],
    )


def operation_message(op: Operation) -> pb.Operation:
    created, updated = Timestamp(), Timestamp()
    created.FromDatetime(op.created)
    updated.FromDatetime(op.updated)
    return pb.Operation(
        id=op.id,
        kind=op.kind,
        phase=op.phase,
        message=op.message,
        app_id=op.app_id,
        backup_id=op.backup_id,
        bucket=op.bucket,
        target_cluster=op.target_cluster,
        namespace_mapping=op.namespace_mapping,
        requested_by=op.requested_by,
        created=created,
        updated=updated,
        volumes=[
            pb.VolumeProgress(
                namespace=w.namespace, claim=w.claim, state=w.state, bytes=w.bytes, error=w.error
            )
            for w in op.volumes
        ],
        items=[
            pb.OperationItem(
                kind=i.kind, name=i.name, namespace=i.namespace, state=i.state, message=i.message
            )
            for i in op.items
        ],
        snapshot_id=op.snapshot_id,
        source_cluster=op.source_cluster,
    )
