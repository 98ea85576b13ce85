"""The restore preflight query over core NATS request/reply: each check, its field and
reason, and that asking writes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.protection.inbox import QUERIES
from services.protection.preflight import PreflightQueries
from tests.protection.restore_kit import APP, Bench, bench, claim, config_map, obj, storage_class
from vessel.bus.nats_port import Bus
from vessel.contracts import queries
from vessel.contracts.events import QueryFailed
from vessel.contracts.protection import PreflightResult, RestoreOptions, RestorePreflight
from vessel.objectstore.minio_port import MinioStore
from vessel.stopping import cancel_and_wait


@pytest.fixture
async def b(bus: Bus, bucket: MinioStore, tmp_path: Path) -> AsyncIterator[Bench]:
    async with bench(bus, bucket, tmp_path) as running:
        # The responder as protection's inbox runs it.
        handler = PreflightQueries(running.p).on_request
        server = await running.p.bus.serve(queries.QUERY_RESTORE_PREFLIGHT, handler, queue=QUERIES)
        await asyncio.sleep(0.05)  # the subscription reaches the server
        try:
            yield running
        finally:
            await cancel_and_wait([server])


async def ask(b: Bench, backup_id: str, target: str = "cluster-b", **kw: Any) -> PreflightResult:
    mapping = kw.pop("mapping", {})
    req = RestorePreflight(
        backup_id=backup_id,
        bucket=kw.pop("bucket", b.bucket),
        target_cluster=target,
        namespace_mapping=mapping,
        options=RestoreOptions.model_validate(kw),
    )
    reply = await b.p.bus.request(queries.QUERY_RESTORE_PREFLIGHT, req.model_dump_json().encode())
    return PreflightResult.model_validate_json(reply)


def fields(result: PreflightResult) -> list[tuple[str, str]]:
    return [(v.field, v.reason) for v in result.violations]


async def test_a_restore_that_would_work_is_ok(b: Bench) -> None:
    await b.b.create(storage_class("fast"))
    backup = b.write_backup([*APP, claim("data")], claims=["data"])
    result = await ask(b, backup.backup_id)
    assert result.ok and result.violations == []


async def test_missing_storage_class_after_mapping_is_invalid(b: Bench) -> None:
    await b.b.create(storage_class("fast"))
    backup = b.write_backup([*APP, claim("data")], claims=["data"])
    result = await ask(b, backup.backup_id, storage_class_mapping={"fast": "platinum"})
    assert fields(result) == [("options.storage_class_mapping", "invalid")]
    assert "'platinum'" in result.violations[0].message
    assert "shop/data" in result.violations[0].message
    assert not result.ok


async def test_existing_objects_under_policy_fail_are_a_conflict_and_nothing_is_written(
    b: Bench,
) -> None:
    await b.b.create(obj("Namespace", "shop", ns=None))
    await b.b.create(config_map("tuning"))
    backup = b.write_backup(APP)
    before, _ = await b.b.list("v1", "ConfigMap")
    result = await ask(b, backup.backup_id, existing="fail")
    assert fields(result) == [("options.existing", "conflict")]
    assert "ConfigMap shop/tuning" in result.violations[0].message
    assert (await ask(b, backup.backup_id, existing="skip")).ok
    after, _ = await b.b.list("v1", "ConfigMap")
    assert after == before


async def test_in_place_needs_confirm_the_backups_cluster_and_no_mapping(b: Bench) -> None:
    backup = b.write_backup(APP)
    result = await ask(b, backup.backup_id, "cluster-b", mapping={"shop": "x"}, in_place=True)
    assert fields(result) == [
        ("options.confirm", "invalid"),
        ("target_cluster", "invalid"),
        ("namespace_mapping", "invalid"),
    ]
    assert (await ask(b, backup.backup_id, "cluster-a", in_place=True, confirm=True)).ok


async def test_transforms_that_do_not_apply_are_named_by_index(b: Bench) -> None:
    backup = b.write_backup(APP)
    result = await ask(
        b,
        backup.backup_id,
        transforms=[
            {"patch": [{"op": "add", "path": "/metadata/annotations", "value": {}}]},
            {
                "match": {"kinds": ["Service"]},
                "patch": [{"op": "test", "path": "/spec/type", "value": "LoadBalancer"}],
            },
        ],
    )
    assert fields(result) == [("options.transforms[1]", "invalid")]
    assert "Service shop/web" in result.violations[0].message


async def test_unknown_backup_bucket_and_cluster_are_not_found(b: Bench) -> None:
    result = await ask(b, "backup-nope", "cluster-z")
    assert fields(result) == [("target_cluster", "not_found"), ("backup_id", "not_found")]
    result = await ask(b, "backup-nope", bucket="elsewhere")
    assert fields(result) == [("bucket", "not_found")]


async def test_a_malformed_request_is_answered_query_failed(b: Bench) -> None:
    reply = await b.p.bus.request(queries.QUERY_RESTORE_PREFLIGHT, b'{"backup_id": 3}')
    failed = QueryFailed.model_validate_json(reply)
    assert "backup_id" in failed.error and "bucket" in failed.error
