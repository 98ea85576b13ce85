"""Entry point: `vessel-mover --cluster ID` moves that cluster's volume data.

Wiring only: the cluster's settings and connections make the `MoverContext`, and the
inbox (`services/mover/inbox.py`) says what the mover listens to.
"""

from __future__ import annotations

import socket

from services.mover import inbox
from services.mover.buckets import MoverBuckets
from services.mover.cancels import Cancels
from services.mover.context import MoverContext
from services.mover.repo import locks
from vessel.buckets import BucketRegistry, kube_secret_reader
from vessel.bus.inbox import listen
from vessel.contracts import state
from vessel.kube.client import KubeCluster
from vessel.runtime import ServiceContext, run_service


async def serve(service: ServiceContext) -> None:
    assert service.cluster is not None
    locks.set_owner(f"mover/{service.cluster}@{socket.gethostname()}")
    bus, own = service.bus, service.settings.cluster(service.cluster)
    registry = BucketRegistry(
        service.settings,
        await bus.kv(state.BUCKETS.name),
        kube_secret_reader(KubeCluster(own.kubeconfig, own.id)),
    )
    ctx = MoverContext(
        settings=service.settings,
        cluster_id=service.cluster,
        bus=bus,
        buckets=MoverBuckets(registry),
        cancels=Cancels(await bus.kv(state.CANCELED_OPERATIONS.name), own.id),
        transfers=await bus.kv(state.TRANSFERS.name),
    )
    await listen(bus, inbox.rows(ctx))


def main() -> None:
    run_service("mover", serve, per_cluster=True)
