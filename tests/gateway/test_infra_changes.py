"""Changing infrastructure through the real gateway over TLS: backends added, updated and
removed by a running provisioner (the call answers with its verdict), clusters registered
and removed; idempotent retries with request_id; who may do it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Struct

from services.gateway.auth.tokens import BOOTSTRAP_NAME
from tests.gateway.harness import Pki, bearer
from tests.gateway.infra_lab import InfraWorld, infra_world
from vessel.api.v1 import infra_pb2 as ipb
from vessel.api.v1 import infra_pb2_grpc as irpc
from vessel.contracts.activity import BUCKET, ActivityRecord
from vessel.contracts.events import ClusterRecord
from vessel.contracts.operations import now
from vessel_dev.rig.processes import NatsServer


@pytest.fixture(scope="module")
async def world(
    nats_server: NatsServer, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[InfraWorld]:
    async with infra_world(nats_server, pki, Path(tmp_path_factory.mktemp("infra"))) as w:
        yield w


def config(world: InfraWorld, name: str, **fields: Any) -> Struct:
    path = world.tmp / name
    path.mkdir(exist_ok=True)
    return ParseDict({"name": name, "type": "dir", "path": str(path), **fields}, Struct())


async def activity(world: InfraWorld, operation_id: str) -> list[ActivityRecord]:
    kv = await world.bus.kv(BUCKET)
    found = []
    for key in await kv.keys():
        entry = await kv.get(key)
        if entry is not None and key.endswith(f".{operation_id}"):
            found.append(ActivityRecord.model_validate_json(entry.value))
    return found


async def backend_names(world: InfraWorld) -> dict[str, ipb.Backend]:
    reply = await irpc.BackendServiceStub(world.channel).ListBackends(
        ipb.ListBackendsRequest(cluster=world.cluster), metadata=bearer(world.tokens["admin"])
    )
    return {b.name: b for b in reply.backends}


async def test_add_update_remove_a_backend_once_per_request_id(world: InfraWorld) -> None:
    stub = irpc.BackendServiceStub(world.channel)
    admin = bearer(world.tokens["admin"])
    rid = f"r-{uuid.uuid4().hex[:8]}"
    request = ipb.PutBackendRequest(
        cluster=world.cluster,
        backend=config(world, "extra", capacity_bytes=256 << 20, pools=[{"name": "gold"}]),
        request_id=rid,
    )
    added = await stub.AddBackend(request, metadata=admin)
    assert (added.name, added.action, list(added.pools)) == ("extra", "add", ["gold"])
    again = await stub.AddBackend(request, metadata=admin)  # a retry: same answer, no new act
    assert again == added
    (record,) = await activity(world, added.operation_id)
    assert (record.action, record.outcome, record.identity) == (
        "backend.add",
        "Succeeded",
        BOOTSTRAP_NAME,
    )
    assert record.cluster == world.cluster and record.target.endswith("/backend/extra")
    listed = (await backend_names(world))["extra"]
    assert listed.capacity_bytes == 256 << 20 and [p.name for p in listed.pools] == ["gold"]

    with pytest.raises(grpc.aio.AioRpcError) as dup:
        await stub.AddBackend(
            ipb.PutBackendRequest(cluster=world.cluster, backend=config(world, "extra")),
            metadata=admin,
        )
    assert dup.value.code() == grpc.StatusCode.ALREADY_EXISTS

    updated = await stub.UpdateBackend(
        ipb.PutBackendRequest(
            cluster=world.cluster,
            backend=config(world, "extra", capacity_bytes=128 << 20, pools=[{"name": "gold"}]),
        ),
        metadata=admin,
    )
    assert updated.action == "update"
    assert (await backend_names(world))["extra"].capacity_bytes == 128 << 20

    removal = ipb.RemoveBackendRequest(cluster=world.cluster, name="extra", request_id=rid)
    removed = await stub.RemoveBackend(removal, metadata=admin)
    assert removed.action == "remove" and list(removed.pools) == []
    assert await stub.RemoveBackend(removal, metadata=admin) == removed
    assert "extra" not in await backend_names(world)


async def test_backend_changes_the_provisioner_refuses_name_the_problem(
    world: InfraWorld,
) -> None:
    stub = irpc.BackendServiceStub(world.channel)
    admin = bearer(world.tokens["admin"])
    with pytest.raises(grpc.aio.AioRpcError) as busy:
        await stub.RemoveBackend(
            ipb.RemoveBackendRequest(cluster=world.cluster, name="local"), metadata=admin
        )
    assert busy.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "still holds 3 volumes" in (busy.value.details() or "")
    missing = ParseDict(
        {"name": "ghost", "type": "dir", "path": str(world.tmp / "absent")}, Struct()
    )
    with pytest.raises(grpc.aio.AioRpcError) as rejected:
        await stub.AddBackend(
            ipb.PutBackendRequest(cluster=world.cluster, backend=missing), metadata=admin
        )
    assert rejected.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "absent" in (rejected.value.details() or "")
    bad = ParseDict({"name": "x", "type": "tape", "path": "/p", "colour": 1}, Struct())
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await stub.AddBackend(
            ipb.PutBackendRequest(cluster=world.cluster, backend=bad), metadata=admin
        )
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    text = invalid.value.details() or ""
    assert "backend.type" in text and "backend.colour" in text
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.UpdateBackend(
            ipb.PutBackendRequest(cluster=world.cluster, backend=config(world, "never")),
            metadata=admin,
        )
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_only_admins_change_backends_and_clusters(world: InfraWorld) -> None:
    backends = irpc.BackendServiceStub(world.channel)
    clusters = irpc.ClusterServiceStub(world.channel)
    put = ipb.PutBackendRequest(cluster=world.cluster, backend=config(world, "sneaky"))
    for role in ("viewer", "member"):
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await backends.AddBackend(put, metadata=bearer(world.tokens[role]))
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "needs role admin" in (denied.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await clusters.RegisterCluster(
            ipb.RegisterClusterRequest(id="newc", kubeconfig_path="/k"),
            metadata=bearer(world.tokens["member"]),
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await backends.RemoveBackend(
            ipb.RemoveBackendRequest(cluster=world.cluster, name="local"),
            metadata=bearer(world.tokens["member"]),
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "sneaky" not in await backend_names(world)


async def test_register_and_remove_a_cluster(world: InfraWorld) -> None:
    stub = irpc.ClusterServiceStub(world.channel)
    admin = bearer(world.tokens["admin"])
    cid = f"c-{uuid.uuid4().hex[:6]}"
    rid = f"r-{uuid.uuid4().hex[:8]}"
    with pytest.raises(grpc.aio.AioRpcError) as both:
        await stub.RegisterCluster(
            ipb.RegisterClusterRequest(id=cid, kubeconfig="x", kubeconfig_path="/k"),
            metadata=admin,
        )
    assert both.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "exactly one" in (both.value.details() or "")
    register = ipb.RegisterClusterRequest(
        id=cid, kubeconfig_path="/etc/kube/config", request_id=rid
    )
    first = await stub.RegisterCluster(register, metadata=admin)
    assert first.cluster == cid and first.action == "register"
    assert await stub.RegisterCluster(register, metadata=admin) == first
    (record,) = await activity(world, first.operation_id)
    assert (record.action, record.cluster, record.target) == (
        "cluster.register",
        cid,
        f"cluster/{cid}",
    )

    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.RemoveCluster(ipb.RemoveClusterRequest(id=cid), metadata=admin)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND  # discovery has not added it
    discovered = ClusterRecord(id=cid, source="registered", state="Available", registered=now())
    kv = await world.bus.kv("clusters")
    await kv.put(cid, discovered.model_dump_json().encode())
    try:
        got = await stub.GetCluster(ipb.GetClusterRequest(id=cid), metadata=admin)
        assert (got.state, got.source) == ("Available", "registered")
        removed = await stub.RemoveCluster(ipb.RemoveClusterRequest(id=cid), metadata=admin)
        assert removed.action == "remove" and removed.operation_id != first.operation_id
    finally:
        await kv.delete(cid)
