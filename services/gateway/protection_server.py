"""Adds the protection services of `vessel.api.v1` (protection.proto) to the gateway."""

from __future__ import annotations

import grpc

from services.gateway.bucket_api import BucketService
from services.gateway.compose_api import CloneService, MigrationService
from services.gateway.hook_api import HOOKS_KV, HookService
from services.gateway.progress_api import ProgressService
from services.gateway.protection_api import SNAPSHOTS_KV, BackupCatalogService, SnapshotService
from services.gateway.schedule_api import SCHEDULES_KV, ScheduleService
from services.gateway.servicers import Gateway
from vessel.api.v1 import protection_pb2_grpc as prpc


async def add_protection_services(gw: Gateway, server: grpc.aio.Server) -> None:
    snapshots, schedules = await gw.bus.kv(SNAPSHOTS_KV), await gw.bus.kv(SCHEDULES_KV)
    prpc.add_SnapshotServiceServicer_to_server(SnapshotService(gw, snapshots), server)
    prpc.add_BackupCatalogServiceServicer_to_server(BackupCatalogService(gw), server)
    prpc.add_ScheduleServiceServicer_to_server(ScheduleService(gw, schedules), server)
    prpc.add_BucketServiceServicer_to_server(BucketService(gw), server)
    prpc.add_ProgressServiceServicer_to_server(ProgressService(gw), server)
    prpc.add_CloneServiceServicer_to_server(CloneService(gw), server)
    prpc.add_MigrationServiceServicer_to_server(MigrationService(gw), server)
    prpc.add_HookServiceServicer_to_server(HookService(gw, await gw.bus.kv(HOOKS_KV)), server)
