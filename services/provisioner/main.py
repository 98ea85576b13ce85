"""Entry point: `vessel-provisioner --cluster ID` serves one cluster's claims."""

from __future__ import annotations

import asyncio

from services.provisioner.backends.factory import build_backend
from services.provisioner.controller import Provisioner
from vessel.kube.client import KubeCluster
from vessel.kube.informer import Informer
from vessel.runtime import ServiceContext, run_service


async def serve(ctx: ServiceContext) -> None:
    assert ctx.cluster is not None
    cluster = ctx.settings.cluster(ctx.cluster)
    backends = [build_backend(b) for b in cluster.backends]
    kube = KubeCluster(cluster.kubeconfig, cluster.id)
    volumes = await ctx.bus.kv("volumes")
    provisioner = Provisioner(cluster.id, kube, ctx.bus, volumes, backends)
    claims = Informer(kube, "v1", "PersistentVolumeClaim")
    await asyncio.gather(
        claims.run(provisioner.on_claim),
        provisioner.resync(lambda: list(claims.cache.values())),
    )


def main() -> None:
    run_service("provisioner", serve, per_cluster=True)
