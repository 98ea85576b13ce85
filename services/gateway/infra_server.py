"""Registration of the infrastructure and activity services on the gateway's server."""

from __future__ import annotations

import grpc

from services.gateway.activity import ActivityLog, ActivityService, AuditedTokenService
from services.gateway.backends_api import BackendService
from services.gateway.events_api import EventService
from services.gateway.infra_api import (
    ClusterService,
    Infra,
    StorageClassService,
    VolumeService,
    VolumeSnapshotService,
)
from services.gateway.servicers import Gateway
from services.gateway.tokens import TokenStore
from vessel.api.v1 import infra_pb2_grpc as irpc
from vessel.api.v1 import tokens_pb2_grpc as trpc
from vessel.contracts.activity import BUCKET as ACTIVITY_BUCKET


async def add_infra_services(gw: Gateway, server: grpc.aio.Server, store: TokenStore) -> Infra:
    """Backends, StorageClasses, volumes, volume snapshots, clusters, activity, events, and
    the token service (whose changes enter the activity log)."""
    log = ActivityLog(await gw.bus.kv(ACTIVITY_BUCKET))
    infra = Infra(
        gw,
        volumes=await gw.bus.kv("volumes"),
        snapshots=await gw.bus.kv("snapshots"),
        clusters=await gw.bus.kv("clusters"),
        activity=log,
    )
    irpc.add_BackendServiceServicer_to_server(BackendService(infra), server)
    irpc.add_StorageClassServiceServicer_to_server(StorageClassService(infra), server)
    irpc.add_VolumeServiceServicer_to_server(VolumeService(infra), server)
    irpc.add_VolumeSnapshotServiceServicer_to_server(VolumeSnapshotService(infra), server)
    irpc.add_ClusterServiceServicer_to_server(ClusterService(infra), server)
    irpc.add_ActivityServiceServicer_to_server(ActivityService(log), server)
    irpc.add_EventServiceServicer_to_server(EventService(gw), server)
    trpc.add_TokenServiceServicer_to_server(AuditedTokenService(store, log), server)
    return infra
