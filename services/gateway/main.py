"""Entry point: `vessel-gateway` serves the gRPC API (with health and reflection)."""

from __future__ import annotations

import asyncio
import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.gateway.servicers import (
    AppService,
    BackupService,
    Gateway,
    OperationService,
    RestoreService,
)
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.runtime import ServiceContext, run_service

log = logging.getLogger("vessel.gateway")


async def serve(ctx: ServiceContext) -> None:
    gw = Gateway(
        ctx.settings,
        ctx.bus,
        await ctx.bus.kv("inventory"),
        await ctx.bus.kv("operations"),
        await ctx.bus.kv("requests"),
    )
    server = grpc.aio.server()
    rpc.add_AppServiceServicer_to_server(AppService(gw), server)
    rpc.add_BackupServiceServicer_to_server(BackupService(gw), server)
    rpc.add_RestoreServiceServicer_to_server(RestoreService(gw), server)
    rpc.add_OperationServiceServicer_to_server(OperationService(gw), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [d.full_name for d in pb.DESCRIPTOR.services_by_name.values()]
    reflection.enable_server_reflection(
        [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    server.add_insecure_port(ctx.settings.gateway_listen)
    await server.start()
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("gateway listening on %s", ctx.settings.gateway_listen)
    try:
        await server.wait_for_termination()
    finally:
        await server.stop(grace=2)
        await asyncio.sleep(0)


def main() -> None:
    run_service("gateway", serve)
