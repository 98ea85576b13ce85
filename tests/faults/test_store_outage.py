"""Faults, with real processes: the bucket's S3 server goes away in the middle of things.

A backup whose bucket stays away longer than the mover's retries ends Failed, naming the
store and the deliveries, instead of staying InProgress; no service exits; once the
store is back, the next backup of the same app completes. (The retries start at 0.2 s
here, `store_retry_seconds`; 5 s by default.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from tests.faults.kit import APP_ID, fault_stack, row
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel_dev.rig.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with fault_stack(tmp_path_factory.mktemp("faults"), VESSEL_STORE_RETRY_SECONDS="0.2") as s:
        yield s


async def backup(channel: grpc.Channel, request_id: str) -> pb.Operation:
    created = rpc.BackupServiceStub(channel).CreateBackup(
        pb.CreateBackupRequest(app_id=APP_ID, bucket="default", request_id=request_id)
    )
    wait = pb.WaitOperationRequest(id=created.id, timeout_seconds=120)
    return await asyncio.to_thread(rpc.OperationServiceStub(channel).WaitOperation, wait)


async def test_a_backup_whose_store_is_gone_fails_clearly_and_the_next_one_completes(
    stack: Stack, source: Path, record_property: Callable[[str, object], None]
) -> None:
    with grpc.insecure_channel(stack.gateway) as channel:
        first = await backup(channel, "before-outage")
        assert first.phase == "Completed", first.message

        stack.s3.stop()
        started = time.monotonic()
        try:
            cut_off = await backup(channel, "during-outage")
        finally:
            took = time.monotonic() - started
            stack.s3.start(ready=stack._bucket_ready)
        assert cut_off.phase == "Failed", cut_off.message
        assert "gave up after 5 deliveries" in cut_off.message, cut_off.message
        assert took < 90, took  # retries of 0.2 s doubling, not an operation left running
        assert all(p.alive() for p in stack.services), stack.logs()

        after = await backup(channel, "after-outage")
        assert after.phase == "Completed", after.message
    check = "the next backup Completed"
    row(record_property, "S3 server down past every retry", cut_off, took, check, "not started")
