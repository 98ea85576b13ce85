"""Reading infrastructure through the real gateway over TLS: backends with pools and free
space, StorageClasses, volumes with used bytes, volume snapshots and clusters, from a
provisioner of an emulated cluster; pages, filters, scopes, and a cluster whose
provisioner is down."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.gateway.harness import Pki, bearer
from tests.gateway.infra_lab import InfraWorld, infra_world
from vessel.api.v1 import infra_pb2 as ipb
from vessel.api.v1 import infra_pb2_grpc as irpc
from vessel_dev.rig.processes import NatsServer


@pytest.fixture(scope="module")
async def world(
    nats_server: NatsServer, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[InfraWorld]:
    async with infra_world(nats_server, pki, Path(tmp_path_factory.mktemp("infra"))) as w:
        yield w


async def walk(call: Callable[[str], Any], field: str) -> tuple[list[Any], int]:
    """Every item over every page, and how many pages it took."""
    items: list[Any] = []
    token, pages = "", 0
    while True:
        reply = await call(token)
        pages += 1
        items += list(getattr(reply, field))
        token = reply.next_page_token
        if not token:
            return items, pages


async def test_backends_list_pools_capacity_and_free_space(world: InfraWorld) -> None:
    stub = irpc.BackendServiceStub(world.channel)
    viewer = bearer(world.tokens["viewer"])
    reply = await stub.ListBackends(ipb.ListBackendsRequest(cluster=world.cluster), metadata=viewer)
    (local,) = reply.backends
    assert (local.cluster, local.name, local.type) == (world.cluster, "local", "dir")
    assert local.capacity_bytes == 1 << 30 and local.volumes == 3
    assert 0 < local.free_bytes <= local.capacity_bytes
    (pool,) = local.pools
    assert pool.name == "default" and pool.attributes["backendType"] == "dir"
    assert pool.allocated_bytes == 3 * (64 << 20)
    got = await stub.GetBackend(
        ipb.GetBackendRequest(cluster=world.cluster, name="local"), metadata=viewer
    )
    assert got == local
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetBackend(
            ipb.GetBackendRequest(cluster=world.cluster, name="nope"), metadata=viewer
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert "backend nope" in (missing.value.details() or "")


async def test_a_cluster_whose_provisioner_is_down_is_unavailable_by_name(
    world: InfraWorld,
) -> None:
    stub = irpc.BackendServiceStub(world.channel)
    admin = bearer(world.tokens["admin"])
    for request in (ipb.ListBackendsRequest(cluster=world.dark), ipb.ListBackendsRequest()):
        with pytest.raises(grpc.aio.AioRpcError) as down:
            await stub.ListBackends(request, metadata=admin)
        assert down.value.code() == grpc.StatusCode.UNAVAILABLE
        assert f"provisioner of cluster {world.dark}" in (down.value.details() or "")
    classes = irpc.StorageClassServiceStub(world.channel)
    with pytest.raises(grpc.aio.AioRpcError) as down:
        await classes.ListStorageClasses(
            ipb.ListStorageClassesRequest(cluster=world.dark), metadata=admin
        )
    assert down.value.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.ListBackends(ipb.ListBackendsRequest(cluster="nowhere"), metadata=admin)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_storage_classes_of_the_cluster(world: InfraWorld) -> None:
    stub = irpc.StorageClassServiceStub(world.channel)
    reply = await stub.ListStorageClasses(
        ipb.ListStorageClassesRequest(cluster=world.cluster),
        metadata=bearer(world.tokens["viewer"]),
    )
    (fast,) = [c for c in reply.storage_classes if c.name == f"fast-{world.cluster}"]
    assert fast.is_default and fast.vessel and fast.allow_volume_expansion
    assert fast.reclaim_policy == "Delete" and fast.provisioner == "vessel.io/provisioner"


async def test_volumes_page_by_page_each_once_with_used_bytes(world: InfraWorld) -> None:
    stub = irpc.VolumeServiceStub(world.channel)
    viewer = bearer(world.tokens["viewer"])
    whole = await stub.ListVolumes(ipb.ListVolumesRequest(cluster=world.cluster), metadata=viewer)
    assert sorted(v.claim for v in whole.volumes) == ["data-a1", "data-a2", "data-b1"]
    assert whole.next_page_token == ""

    async def page(token: str) -> Any:
        return await stub.ListVolumes(
            ipb.ListVolumesRequest(cluster=world.cluster, page_size=1, page_token=token),
            metadata=viewer,
        )

    walked, pages = await walk(page, "volumes")
    assert pages == 3 and [v.id for v in walked] == [v.id for v in whole.volumes]
    one = next(v for v in whole.volumes if v.claim == "data-a1")
    assert one.id == world.volumes["data-a1"] and one.namespace == "a"
    assert (one.backend, one.pool, one.state, one.size_bytes) == (
        "local",
        "default",
        "Bound",
        64 << 20,
    )
    (world.tmp / "local" / one.id / "payload").write_bytes(b"x" * 300_000)
    got = await stub.GetVolume(
        ipb.GetVolumeRequest(cluster=world.cluster, id=one.id), metadata=viewer
    )
    assert got.used_bytes >= 300_000 and got.claim == "data-a1"
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await page("not a token!")
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in (bad.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as big:
        await stub.ListVolumes(ipb.ListVolumesRequest(page_size=1001), metadata=viewer)
    assert big.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_volume_filters(world: InfraWorld) -> None:
    stub = irpc.VolumeServiceStub(world.channel)
    viewer = bearer(world.tokens["viewer"])
    in_b = await stub.ListVolumes(ipb.ListVolumesRequest(namespace="b"), metadata=viewer)
    assert [v.claim for v in in_b.volumes] == ["data-b1"]
    none = await stub.ListVolumes(
        ipb.ListVolumesRequest(cluster=world.cluster, state="Retained"), metadata=viewer
    )
    assert list(none.volumes) == []
    other = await stub.ListVolumes(ipb.ListVolumesRequest(backend="other"), metadata=viewer)
    assert list(other.volumes) == []


async def test_a_token_scoped_to_namespace_a_sees_no_volume_of_b(world: InfraWorld) -> None:
    stub = irpc.VolumeServiceStub(world.channel)
    scoped = bearer(world.tokens["viewer-a"])
    listed = await stub.ListVolumes(ipb.ListVolumesRequest(), metadata=scoped)
    assert sorted(v.claim for v in listed.volumes) == ["data-a1", "data-a2"]
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stub.GetVolume(
            ipb.GetVolumeRequest(cluster=world.cluster, id=world.volumes["data-b1"]),
            metadata=scoped,
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "namespace 'b'" in (denied.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as asked:
        await stub.ListVolumes(
            ipb.ListVolumesRequest(cluster=world.cluster, namespace="b"), metadata=scoped
        )
    assert asked.value.code() == grpc.StatusCode.PERMISSION_DENIED
    clusters = await irpc.ClusterServiceStub(world.channel).ListClusters(
        ipb.ListClustersRequest(), metadata=scoped
    )
    assert [c.id for c in clusters.clusters] == [world.cluster]


async def test_volume_snapshots_with_their_claim(world: InfraWorld) -> None:
    stub = irpc.VolumeSnapshotServiceStub(world.channel)
    viewer = bearer(world.tokens["viewer"])
    reply = await stub.ListVolumeSnapshots(
        ipb.ListVolumeSnapshotsRequest(cluster=world.cluster), metadata=viewer
    )
    (snap,) = reply.volume_snapshots
    assert (snap.name, snap.namespace, snap.claim, snap.state) == (
        "snap-a1",
        "a",
        "data-a1",
        "Ready",
    )
    assert snap.volume_id == world.volumes["data-a1"] and snap.created.seconds > 0
    got = await stub.GetVolumeSnapshot(
        ipb.GetVolumeSnapshotRequest(cluster=world.cluster, id=snap.id), metadata=viewer
    )
    assert got == snap
    none = await stub.ListVolumeSnapshots(
        ipb.ListVolumeSnapshotsRequest(namespace="b"), metadata=viewer
    )
    assert list(none.volume_snapshots) == []


async def test_clusters_configured_and_paged(world: InfraWorld) -> None:
    stub = irpc.ClusterServiceStub(world.channel)
    viewer = bearer(world.tokens["viewer"])

    async def page(token: str) -> Any:
        return await stub.ListClusters(
            ipb.ListClustersRequest(page_size=1, page_token=token), metadata=viewer
        )

    walked, _ = await walk(page, "clusters")
    ids = [c.id for c in walked]
    assert world.cluster in ids and world.dark in ids and len(ids) == len(set(ids))
    got = await stub.GetCluster(ipb.GetClusterRequest(id=world.dark), metadata=viewer)
    assert got.source == "config" and got.state == "Pending"
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetCluster(ipb.GetClusterRequest(id="nowhere"), metadata=viewer)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
