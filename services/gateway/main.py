"""Entry point: `vessel-gateway` serves the gRPC API (with health and reflection)."""

from __future__ import annotations

import asyncio

from services.gateway.server import build_server, log_security
from vessel.runtime import ServiceContext, run_service


async def serve(ctx: ServiceContext) -> None:
    built = await build_server(ctx.settings, ctx.bus)
    await built.start()
    await log_security(built, ctx.settings)
    try:
        await built.server.wait_for_termination()
    finally:
        await built.stop(grace=2)
        await asyncio.sleep(0)


def main() -> None:
    run_service("gateway", serve)
