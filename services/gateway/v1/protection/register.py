"""Adds the services of proto/vessel/api/v1/protection.proto to the gateway's server: the
generated function of each servicer's service (the inbox names which servicers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from services.gateway.v1.protection.backups import BackupCatalogService
from services.gateway.v1.protection.buckets import BucketService
from services.gateway.v1.protection.files import BackupFileService
from services.gateway.v1.protection.hooks import HookService
from services.gateway.v1.protection.mobility import CloneService, MigrationService
from services.gateway.v1.protection.platform import PlatformService
from services.gateway.v1.protection.progress import ProgressService
from services.gateway.v1.protection.schedules import ScheduleService
from services.gateway.v1.protection.snapshots import SnapshotService
from services.gateway.v1.protection.verifications import VerificationService
from vessel.api.v1 import protection_pb2_grpc as prpc

ADD: dict[type, Callable[[Any, grpc.aio.Server], None]] = {
    SnapshotService: prpc.add_SnapshotServiceServicer_to_server,
    BackupCatalogService: prpc.add_BackupCatalogServiceServicer_to_server,
    BackupFileService: prpc.add_BackupFileServiceServicer_to_server,
    VerificationService: prpc.add_VerificationServiceServicer_to_server,
    PlatformService: prpc.add_PlatformServiceServicer_to_server,
    ScheduleService: prpc.add_ScheduleServiceServicer_to_server,
    BucketService: prpc.add_BucketServiceServicer_to_server,
    ProgressService: prpc.add_ProgressServiceServicer_to_server,
    CloneService: prpc.add_CloneServiceServicer_to_server,
    MigrationService: prpc.add_MigrationServiceServicer_to_server,
    HookService: prpc.add_HookServiceServicer_to_server,
}


def register(servicer: object, server: grpc.aio.Server) -> None:
    """KeyError: not a servicer of protection.proto."""
    ADD[type(servicer)](servicer, server)
