"""What every service process shares: arguments, settings, logging, tracing, bus, clean
shutdown (which exports the spans still buffered)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from vessel.bus import inbox
from vessel.bus.nats_port import Bus, NatsAuth
from vessel.config import ConfigError, VesselSettings, load_settings
from vessel.stopping import cancel_and_wait
from vessel.telemetry import metrics, tracing
from vessel.telemetry.logs import setup_logging


@dataclass
class ServiceContext:
    name: str
    settings: VesselSettings
    bus: Bus
    cluster: str | None


Body = Callable[[ServiceContext], Coroutine[Any, Any, None]]


def run_service(
    name: str, body: Body, *, per_cluster: bool = False, cluster_help: str = ""
) -> None:
    """`per_cluster`: `--cluster` is required (a node agent); `cluster_help`: it is
    optional, with this help."""
    parser = argparse.ArgumentParser(prog=f"vessel-{name}")
    parser.add_argument("--config", help="YAML configuration file (default: $VESSEL_CONFIG)")
    if per_cluster or cluster_help:
        parser.add_argument(
            "--cluster",
            required=per_cluster,
            help=cluster_help or "Id of the cluster this agent serves",
        )
    args = parser.parse_args()
    try:
        settings = load_settings(args.config)
        cluster = getattr(args, "cluster", None)
        if cluster is not None:
            settings.cluster(cluster)
    except ConfigError as exc:
        print(f"vessel-{name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    log = setup_logging(name, settings.log_level)
    tracing.configure(name, settings.otlp_endpoint, cluster=cluster)
    if settings.metrics_listen:
        metrics.serve(settings.metrics_listen)
    try:
        asyncio.run(_serve(name, body, settings, cluster))
    except ConfigError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from exc
    finally:
        tracing.shutdown()


async def _serve(name: str, body: Body, settings: VesselSettings, cluster: str | None) -> None:
    bus = Bus(
        source=f"/clusters/{cluster or 'global'}/{name}", ack_wait=settings.redelivery_seconds
    )
    await bus.connect(settings.nats_url, name=f"vessel-{name}", auth=nats_auth(settings))
    metrics.ready_when(lambda: bus.connected and not inbox.DOWN)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(body(ServiceContext(name, settings, bus, cluster)))
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    await cancel_and_wait([task, stopper])
    await bus.close()
    if task in done and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]


def nats_auth(settings: VesselSettings) -> NatsAuth:
    password = settings.nats_password.get_secret_value() if settings.nats_password else None
    credentials = str(settings.nats_credentials) if settings.nats_credentials else None
    return NatsAuth(settings.nats_user, password, credentials, settings.nats_jetstream_domain)
