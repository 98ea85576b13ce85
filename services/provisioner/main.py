"""Entry point: `vessel-provisioner --cluster ID` serves one cluster's claims and snapshots."""

from __future__ import annotations

from services.provisioner.backend_admin import BackendAdmin
from services.provisioner.controller import Provisioner
from services.provisioner.inbox import inbox
from vessel.bus.inbox import listen
from vessel.contracts import state
from vessel.kube.client import KubeCluster
from vessel.runtime import ServiceContext, run_service


async def serve(service: ServiceContext) -> None:
    assert service.cluster is not None
    cluster = service.settings.cluster(service.cluster)
    kube = KubeCluster(cluster.kubeconfig, cluster.id)
    provisioner = Provisioner(  # builds the context, `provisioner.env`
        cluster.id,
        kube,
        service.bus,
        await service.bus.kv(state.VOLUMES.name),
        [],
        snapshots=await service.bus.kv(state.SNAPSHOTS.name),
        pools=[],
        resync_seconds=service.settings.provisioner_resync_seconds,
        autogrow_seconds=service.settings.provisioner_autogrow_seconds,
        node_name=cluster.node_name,
    )
    backends = await service.bus.kv(state.BACKENDS.name)
    admin = BackendAdmin(provisioner.env, backends, cluster.backends)
    await admin.load()  # configured backends, then those added at runtime
    await listen(service.bus, inbox(service.bus, provisioner, admin))


def main() -> None:
    run_service("provisioner", serve, per_cluster=True)
