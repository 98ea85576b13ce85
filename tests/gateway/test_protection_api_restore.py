"""Restore options and the preflight through a real gateway, and live progress streamed
from real events.

The preflight is answered on its real NATS subject by a responder whose answer each test
chooses (protection's own preflight rules are tested with protection)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from services.gateway.v1.vessel import restore_options
from tests.gateway.harness import Pki, bearer, unique
from tests.gateway.protection_harness import (
    Names,
    World,
    answering,
    last_command,
    open_world,
    reason,
    violations,
)
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.contracts import subjects
from vessel.contracts.commands import CreateRestore
from vessel.contracts.events import TransferProgress
from vessel.contracts.operations import Operation, Phase, VolumeWork
from vessel.contracts.protection import PreflightViolation
from vessel_dev.rig.processes import NatsServer, S3Server

N = Names()


@pytest.fixture(scope="module")
async def world(nats_server: NatsServer, s3_server: S3Server, pki: Pki) -> AsyncIterator[World]:
    async with open_world(
        N, "gateway-protection-restore", nats_server, s3_server, pki, preflight=True
    ) as w:
        yield w


@pytest.fixture(autouse=True)
def accept(world: World) -> None:
    """Each test starts with a preflight that accepts everything."""
    world.answer = None


def restore_request(**fields: Any) -> pb.CreateRestoreRequest:
    base: dict[str, Any] = {
        "backup_id": N.backup(0),
        "bucket": "default",
        "target_cluster": N.west,
        "namespace_mapping": {"shop": "shop-copy"},
    }
    base.update(fields)
    return pb.CreateRestoreRequest(**base)


async def restore(w: World, request: pb.CreateRestoreRequest, token: str = "member") -> Any:
    return await rpc.RestoreServiceStub(w.channel).CreateRestore(
        request, metadata=bearer(w.tokens[token])
    )


PATCH = [{"op": "replace", "path": "/spec/replicas", "value": 1}]
TRANSFORMS = [
    {
        "match": {"kinds": ["Deployment"]},
        "patch": [{"op": "replace", "path": "/spec/replicas", "value": 1}],
    }
]


async def test_options_go_to_the_preflight_and_the_command(world: World) -> None:
    request = restore_request(
        storage_class_mapping={"fast": "gold"},
        include=[pb.ResourceFilter(kinds=["ConfigMap", "Deployment"])],
        exclude=[pb.ResourceFilter(names=["foo"], labels={"tier": "cache"})],
        transforms_json=json.dumps(TRANSFORMS),
        existing="update",
        request_id=unique("r"),
    )
    asked = len(world.preflight_requests)
    op = await restore(world, request)
    assert op.kind == "restore" and op.target_cluster == N.west
    (query,) = world.preflight_requests[asked:]
    assert query["backup_id"] == N.backup(0) and query["namespace_mapping"] == {"shop": "shop-copy"}
    assert query["options"]["storage_class_mapping"] == {"fast": "gold"}
    assert query["options"]["include"][0]["kinds"] == ["ConfigMap", "Deployment"]
    assert query["options"]["exclude"][0] == {
        "kinds": [],
        "names": ["foo"],
        "namespaces": [],
        "labels": {"tier": "cache"},
    }
    (transform,) = query["options"]["transforms"]
    assert transform["patch"] == TRANSFORMS[0]["patch"]
    assert transform["match"]["kinds"] == ["Deployment"]
    assert query["options"]["existing"] == "update" and not query["options"]["in_place"]
    command = await last_command(world.bus, subjects.CREATE_RESTORE)
    assert isinstance(command, CreateRestore) and command.operation_id == op.id
    assert command.options.model_dump(mode="json") == query["options"]


async def test_request_problems_are_invalid_before_any_preflight(world: World) -> None:
    asked = len(world.preflight_requests)
    bad_patch = [{"match": {}, "patch": [{"op": "bogus", "path": "/x"}]}]
    cases = {
        "transforms_json": restore_request(transforms_json="[{not json"),
        "transforms_json[0].patch": restore_request(transforms_json=json.dumps(bad_patch)),
        "existing": restore_request(existing="merge"),
        "confirm": restore_request(in_place=True),
        "storage_class_mapping[Gold_X]": restore_request(storage_class_mapping={"Gold_X": "b"}),
        "transforms_json[0].match.kinds": restore_request(
            transforms_json=json.dumps([{"match": {"kinds": "ConfigMap"}, "patch": PATCH}])
        ),
    }
    for field, request in cases.items():
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await restore(world, request)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in violations(error.value), (field, violations(error.value))
    assert len(world.preflight_requests) == asked


async def test_a_storage_class_the_preflight_rejects_is_invalid(world: World) -> None:
    world.answer = answering(
        PreflightViolation(
            field="options.storage_class_mapping",
            reason="invalid",
            message=f"StorageClass 'platinum' does not exist in cluster {N.west}",
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await restore(world, restore_request(storage_class_mapping={"fast": "platinum"}))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'platinum' does not exist" in violations(error.value)["storage_class_mapping"]


async def test_conflicts_fail_the_precondition_and_are_listed(world: World) -> None:
    world.answer = answering(
        PreflightViolation(
            field="options.existing",
            reason="conflict",
            message="ConfigMap shop-copy/settings exists",
        ),
        PreflightViolation(
            field="options.existing",
            reason="conflict",
            message="PersistentVolumeClaim shop-copy/data exists",
        ),
    )
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await restore(world, restore_request(existing="fail"))
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    text = error.value.details() or ""
    assert "already in the target" in text and "ConfigMap shop-copy/settings" in text
    assert "PersistentVolumeClaim shop-copy/data" in text
    assert reason(error.value) == "RESTORE_CONFLICT"


async def test_what_the_preflight_cannot_find_is_not_found(world: World) -> None:
    world.answer = answering(
        PreflightViolation(
            field="backup_id",
            reason="not_found",
            message="repository snapshot of volume shop/data is missing",
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await restore(world, restore_request())
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert "shop/data is missing" in (error.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await restore(world, restore_request(backup_id="bk-never"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_no_answer_is_unavailable(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(restore_options, "PREFLIGHT_SECONDS", 0.5)

    async def silent(request: dict[str, Any]) -> None:
        return None

    world.answer = silent
    with pytest.raises(grpc.aio.AioRpcError) as timed_out:
        await restore(world, restore_request())
    assert timed_out.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "did not answer" in (timed_out.value.details() or "")
    await world.stop_preflight()
    try:
        with pytest.raises(grpc.aio.AioRpcError) as nobody:
            await restore(world, restore_request(existing="fail"))
        assert nobody.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "no protection service" in (nobody.value.details() or "")
        plain = await restore(world, restore_request())  # queued, as before options existed
        assert plain.phase == "New"
    finally:
        await world.serve_preflight()


async def test_a_retry_returns_the_first_operation_without_a_new_preflight(
    world: World,
) -> None:
    request = restore_request(request_id=unique("r"), existing="update")
    first = await restore(world, request)
    world.answer = answering(
        PreflightViolation(field="options.existing", reason="conflict", message="now it exists")
    )
    asked = len(world.preflight_requests)
    again = await restore(world, request)
    assert again.id == first.id and len(world.preflight_requests) == asked


# ---- live progress ----


async def _progress(world: World, op_id: str, transfer: str, done: int) -> None:
    await world.bus.publish(
        subjects.TRANSFER_PROGRESS,
        TransferProgress(
            transfer_id=transfer,
            operation_id=op_id,
            cluster=N.east,
            direction="backup",
            files=done,
            bytes=done * 1000,
            bytes_per_second=500.0,
            total_bytes=10_000,
            eta_seconds=(10_000 - done * 1000) / 500.0,
        ),
    )


async def test_watch_streams_progress_until_the_operation_ends(world: World) -> None:
    operations = await world.bus.kv("operations")
    op = Operation(
        id=unique("backup-watch"),
        kind="backup",
        app_id=N.shop_app,
        bucket="default",
        phase="InProgress",
        volumes=[VolumeWork(claim="data", namespace="shop", transfer_id="t-data", state="Moving")],
    )
    await operations.put(op.id, op.model_dump_json().encode())
    stream = prpc.ProgressServiceStub(world.channel).WatchOperation(
        ppb.WatchOperationRequest(id=op.id, timeout_seconds=30),
        metadata=bearer(world.tokens["viewer"]),
    )
    queue: asyncio.Queue[ppb.OperationUpdate | None] = asyncio.Queue()

    async def collect() -> None:
        async for update in stream:
            queue.put_nowait(update)
        queue.put_nowait(None)

    async def next_update() -> ppb.OperationUpdate | None:
        return await asyncio.wait_for(queue.get(), 10)

    collecting = asyncio.create_task(collect())
    updates = [await next_update()]  # the watch is running
    await _progress(world, op.id, "t-data", 3)
    await _progress(world, "someone-else", "t-other", 7)
    await _progress(world, op.id, "t-data", 9)
    while sum(u.HasField("progress") for u in updates if u) < 2:
        updates.append(await next_update())
    finished = op.model_copy(update={"phase": Phase.COMPLETED, "message": "all done"})
    await operations.put(op.id, finished.model_dump_json().encode())
    while updates[-1] is not None:
        updates.append(await next_update())
    await collecting
    updates.pop()
    assert updates[0] is not None and updates[0].operation.phase == "InProgress"
    progress = [u.progress for u in updates if u and u.HasField("progress")]
    assert [p.files for p in progress] == [3, 9]  # another operation's transfer is not shown
    assert (progress[0].claim, progress[0].namespace, progress[0].total_bytes) == (
        "data",
        "shop",
        10_000,
    )
    assert progress[1].eta_seconds == pytest.approx(2.0)
    assert updates[-1] is not None and updates[-1].operation.phase == "Completed"


async def test_watch_refuses_what_it_cannot_watch(world: World) -> None:
    cases = {
        grpc.StatusCode.NOT_FOUND: ppb.WatchOperationRequest(id="backup-nope"),
        grpc.StatusCode.INVALID_ARGUMENT: ppb.WatchOperationRequest(
            id=N.operation, timeout_seconds=-1
        ),
    }
    for code, request in cases.items():
        with pytest.raises(grpc.aio.AioRpcError) as error:
            stream = prpc.ProgressServiceStub(world.channel).WatchOperation(
                request, metadata=bearer(world.tokens["admin"])
            )
            _ = [u async for u in stream]
        assert error.value.code() == code
    finished = prpc.ProgressServiceStub(world.channel).WatchOperation(
        ppb.WatchOperationRequest(id=N.operation), metadata=bearer(world.tokens["viewer"])
    )
    updates = [u async for u in finished]  # already done: one update, then the end
    assert [u.operation.phase for u in updates] == ["Completed"]


async def test_trusting_an_unsealed_backup_needs_an_admin(world: World) -> None:
    """Restoring a backup nothing can verify vouches for whoever could write the bucket."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await restore(world, restore_request(trust_unsealed=True), token="owner")
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "trust_unsealed needs role admin" in (refused.value.details() or "")
    asked = len(world.preflight_requests)
    op = await restore(world, restore_request(trust_unsealed=True), token="admin")
    assert op.kind == "restore"
    (query,) = world.preflight_requests[asked:]
    assert query["options"]["trust_unsealed"] is True
    command = await last_command(world.bus, subjects.CREATE_RESTORE)
    assert isinstance(command, CreateRestore) and command.options.trust_unsealed
