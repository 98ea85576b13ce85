"""The mover's KV records are kept under its cluster, and a record an older version kept
under the bare id is still found: an upgrade forgets no finished transfer or cancel."""

from __future__ import annotations

import uuid

from services.mover.state import CanceledOperations, TransferRecords
from vessel.bus.nats_port import Bus
from vessel.contracts.events import TransferResult
from vessel.contracts.protection import OperationCanceled


async def test_records_are_keyed_by_cluster_and_legacy_keys_still_read(bus: Bus) -> None:
    kv = await bus.kv(f"records_{uuid.uuid4().hex[:8]}")
    east, west = TransferRecords(kv, "east"), TransferRecords(kv, "west")
    done = TransferResult(transfer_id="t1", operation_id="op", cluster="east", direction="backup")
    await east.put(done)
    assert await kv.keys() == ["east.t1"]
    assert await east.get("t1") == done
    assert await west.get("t1") is None  # another cluster's mover has its own
    older = done.model_copy(update={"transfer_id": "t0"})
    await kv.put("t0", older.model_dump_json().encode())  # as versions before wrote it
    assert await west.get("t0") == older

    cancels = CanceledOperations(kv, "east")
    await cancels.put(OperationCanceled(operation_id="op-2", kind="backup"))
    assert "east.op-2" in await kv.keys() and await cancels.holds("op-2")
    assert not await CanceledOperations(kv, "west").holds("op-2")
    await kv.put("op-1", b"{}")
    assert await CanceledOperations(kv, "west").holds("op-1")
