"""Entry point: `vessel-gateway` serves the gRPC API (with health and reflection).

Wiring only: the context (settings, bus, KV buckets), the authenticator, the server, and
the inbox's services added to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from services.gateway import inbox
from services.gateway.auth.tokens import Authenticator
from services.gateway.context import GatewayContext
from services.gateway.server import GatewayServer, build_server, log_security
from vessel.bus.nats_port import Bus
from vessel.config import VesselSettings
from vessel.runtime import ServiceContext, run_service


async def build_gateway(
    settings: VesselSettings,
    bus: Bus,
    *,
    environ: Mapping[str, str] | None = None,
) -> GatewayServer:
    """The gateway's gRPC server with every API service, bound but not started. Raises
    ConfigError for unusable TLS or auth settings; `environ` (default os.environ) holds the
    bootstrap admin token."""
    ctx = await GatewayContext.open(settings, bus)
    built = build_server(settings, Authenticator(settings, ctx.tokens, environ))
    for rpc in inbox.rpcs(ctx):
        rpc.register(rpc.servicer, built.server)
    return built


async def serve(ctx: ServiceContext) -> None:
    built = await build_gateway(ctx.settings, ctx.bus)
    await built.start()
    await log_security(built, ctx.settings)
    try:
        await built.server.wait_for_termination()
    finally:
        await built.stop(grace=2)
        await asyncio.sleep(0)


def main() -> None:
    run_service("gateway", serve)
