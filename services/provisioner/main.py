"""Entry point: `vessel-provisioner --cluster ID` serves one cluster's claims and snapshots."""

from __future__ import annotations

from services.provisioner.backends.base import BackendError
from services.provisioner.backends.factory import build_backend
from services.provisioner.controller import Provisioner
from services.provisioner.pools import build_pools, check_backend_names
from vessel.config import ConfigError
from vessel.kube.client import KubeCluster
from vessel.runtime import ServiceContext, run_service


async def serve(ctx: ServiceContext) -> None:
    assert ctx.cluster is not None
    cluster = ctx.settings.cluster(ctx.cluster)
    check_backend_names(cluster.backends, cluster.id)
    backends, pools = [], []
    for config in cluster.backends:
        try:
            backend = build_backend(config)
        except BackendError as exc:  # path missing, not btrfs...: the message says which
            raise ConfigError(f"cluster {cluster.id}: {exc}") from exc
        backends.append(backend)
        pools += build_pools(config, backend.type, backend.capabilities)
    kube = KubeCluster(cluster.kubeconfig, cluster.id)
    provisioner = Provisioner(
        cluster.id,
        kube,
        ctx.bus,
        await ctx.bus.kv("volumes"),
        backends,
        snapshots=await ctx.bus.kv("snapshots"),
        pools=pools,
        resync_seconds=ctx.settings.provisioner_resync_seconds,
        autogrow_seconds=ctx.settings.provisioner_autogrow_seconds,
    )
    await provisioner.run()


def main() -> None:
    run_service("provisioner", serve, per_cluster=True)
