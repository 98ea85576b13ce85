"""Adds the services of proto/vessel/api/v1/infra.proto to the gateway's server: the
generated function of each servicer's service (the inbox names which servicers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from services.gateway.v1.infra.activity import ActivityService
from services.gateway.v1.infra.backends import BackendService
from services.gateway.v1.infra.clusters import ClusterService
from services.gateway.v1.infra.events import EventService
from services.gateway.v1.infra.storage_classes import StorageClassService
from services.gateway.v1.infra.volume_snapshots import VolumeSnapshotService
from services.gateway.v1.infra.volumes import VolumeService
from vessel.api.v1 import infra_pb2_grpc as irpc

ADD: dict[type, Callable[[Any, grpc.aio.Server], None]] = {
    BackendService: irpc.add_BackendServiceServicer_to_server,
    StorageClassService: irpc.add_StorageClassServiceServicer_to_server,
    VolumeService: irpc.add_VolumeServiceServicer_to_server,
    VolumeSnapshotService: irpc.add_VolumeSnapshotServiceServicer_to_server,
    ClusterService: irpc.add_ClusterServiceServicer_to_server,
    ActivityService: irpc.add_ActivityServiceServicer_to_server,
    EventService: irpc.add_EventServiceServicer_to_server,
}


def register(servicer: object, server: grpc.aio.Server) -> None:
    """KeyError: not a servicer of infra.proto."""
    ADD[type(servicer)](servicer, server)
