"""What the gateway listens to: every gRPC service of `vessel.api.v1`, by proto file, with
its servicer and the function adding it to the server (`v1/<file>/register.py`).

The gateway keeps no durable consumer, responder or loop on the bus (no row of
`vessel.bus.inbox`): the events it reads, it reads during a call, on an ordered consumer
that ends with the call. `tails` names them per service: live progress, the verdicts on
backend and bucket changes the call waits for, and the event stream a caller watches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from services.gateway.context import GatewayContext
from services.gateway.provisioners import BACKEND_EVENTS
from services.gateway.v1.infra import register as infra
from services.gateway.v1.infra.activity import ActivityService
from services.gateway.v1.infra.backends import BackendService
from services.gateway.v1.infra.clusters import ClusterService
from services.gateway.v1.infra.events import EVERY_EVENT, EventService
from services.gateway.v1.infra.storage_classes import StorageClassService
from services.gateway.v1.infra.volume_snapshots import VolumeSnapshotService
from services.gateway.v1.infra.volumes import VolumeService
from services.gateway.v1.protection import register as protection
from services.gateway.v1.protection.backups import BackupCatalogService
from services.gateway.v1.protection.buckets import BUCKET_EVENTS, BucketService
from services.gateway.v1.protection.files import BackupFileService
from services.gateway.v1.protection.hooks import HookService
from services.gateway.v1.protection.mobility import CloneService, MigrationService
from services.gateway.v1.protection.platform import PlatformService
from services.gateway.v1.protection.progress import PROGRESS_EVENTS, ProgressService
from services.gateway.v1.protection.schedules import ScheduleService
from services.gateway.v1.protection.snapshots import SnapshotService
from services.gateway.v1.protection.verifications import VerificationService
from services.gateway.v1.tokens import register as tokens
from services.gateway.v1.tokens.tokens import TokenService
from services.gateway.v1.vessel import register as vessel
from services.gateway.v1.vessel.apps import AppService
from services.gateway.v1.vessel.backups import BackupService
from services.gateway.v1.vessel.operations import OperationService
from services.gateway.v1.vessel.restores import RestoreService


@dataclass(frozen=True)
class Rpc:
    """A gRPC service the gateway serves (its servicer's class is named after it)."""

    servicer: object
    register: Callable[[Any, grpc.aio.Server], None]
    tails: tuple[str, ...] = ()
    """Event subjects its calls read while they run."""


def rpcs(ctx: GatewayContext) -> list[Rpc]:
    return [
        # vessel.proto
        Rpc(AppService(ctx), vessel.register),
        Rpc(BackupService(ctx), vessel.register),
        Rpc(RestoreService(ctx), vessel.register),
        Rpc(OperationService(ctx), vessel.register),
        # protection.proto
        Rpc(SnapshotService(ctx), protection.register),
        Rpc(BackupCatalogService(ctx), protection.register),
        Rpc(BackupFileService(ctx), protection.register),
        Rpc(VerificationService(ctx), protection.register),
        Rpc(PlatformService(ctx), protection.register),
        Rpc(ScheduleService(ctx), protection.register),
        Rpc(BucketService(ctx), protection.register, tails=(BUCKET_EVENTS,)),
        Rpc(ProgressService(ctx), protection.register, tails=(PROGRESS_EVENTS,)),
        Rpc(CloneService(ctx), protection.register),
        Rpc(MigrationService(ctx), protection.register),
        Rpc(HookService(ctx), protection.register),
        # infra.proto
        Rpc(BackendService(ctx), infra.register, tails=(BACKEND_EVENTS,)),
        Rpc(StorageClassService(ctx), infra.register),
        Rpc(VolumeService(ctx), infra.register),
        Rpc(VolumeSnapshotService(ctx), infra.register),
        Rpc(ClusterService(ctx), infra.register),
        Rpc(ActivityService(ctx), infra.register),
        Rpc(EventService(ctx), infra.register, tails=(EVERY_EVENT,)),
        # tokens.proto
        Rpc(TokenService(ctx), tokens.register),
    ]
