"""The KV records the mover owns, each in its bucket of the state catalogue
(`vessel.contracts.state`): `transfers` and `canceled_operations`.

Both models are contracts (`TransferResult`, `OperationCanceled`): a transfer's record is
the very result it announced, so a redelivered command announces it again instead of
copying again; a canceled operation is kept as the event that canceled it, so a transfer
command arriving after the cancel, or after a restart, fails at once.

Keys begin with the mover's cluster, so NATS lets a cluster's mover write only its own
(docs/design/0007-hub-and-agents.md). Versions before that wrote the bare id; a record
under it is still read, so an upgrade forgets no finished transfer or cancel.
"""

from __future__ import annotations

from vessel.bus.nats_port import KeyValue
from vessel.contracts.events import TransferResult
from vessel.contracts.protection import OperationCanceled


async def _read(kv: KeyValue, cluster: str, key: str) -> bytes | None:
    entry = await kv.get(f"{cluster}.{key}") or await kv.get(key)
    return None if entry is None else entry.value


class TransferRecords:
    """KV `transfers`: each finished transfer's result, by `<cluster>.<transfer id>`."""

    def __init__(self, kv: KeyValue, cluster: str) -> None:
        self.kv, self.cluster = kv, cluster

    async def get(self, transfer_id: str) -> TransferResult | None:
        value = await _read(self.kv, self.cluster, transfer_id)
        return None if value is None else TransferResult.model_validate_json(value)

    async def put(self, result: TransferResult) -> None:
        key = f"{self.cluster}.{result.transfer_id}"
        await self.kv.put(key, result.model_dump_json().encode())


class CanceledOperations:
    """KV `canceled_operations`: the cancel event of each operation whose transfers stop,
    by `<cluster>.<operation id>` (each cluster's mover keeps its own)."""

    def __init__(self, kv: KeyValue, cluster: str) -> None:
        self.kv, self.cluster = kv, cluster

    async def put(self, event: OperationCanceled) -> None:
        key = f"{self.cluster}.{event.operation_id}"
        await self.kv.put(key, event.model_dump_json().encode())

    async def holds(self, operation_id: str) -> bool:
        return await _read(self.kv, self.cluster, operation_id) is not None
