"""The KV records the mover owns, each in its bucket of the state catalogue
(`vessel.contracts.state`): `transfers` and `canceled_operations`.

Both models are contracts (`TransferResult`, `OperationCanceled`): a transfer's record is
the very result it announced, so a redelivered command announces it again instead of
copying again; a canceled operation is kept as the event that canceled it, so a transfer
command arriving after the cancel, or after a restart, fails at once.
"""

from __future__ import annotations

from vessel.bus.nats_port import KeyValue
from vessel.contracts.events import TransferResult
from vessel.contracts.protection import OperationCanceled


class TransferRecords:
    """KV `transfers`: each finished transfer's result, by transfer id."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def get(self, transfer_id: str) -> TransferResult | None:
        entry = await self.kv.get(transfer_id)
        return None if entry is None else TransferResult.model_validate_json(entry.value)

    async def put(self, result: TransferResult) -> None:
        await self.kv.put(result.transfer_id, result.model_dump_json().encode())


class CanceledOperations:
    """KV `canceled_operations`: the cancel event of each operation whose transfers stop."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def put(self, event: OperationCanceled) -> None:
        await self.kv.put(event.operation_id, event.model_dump_json().encode())

    async def holds(self, operation_id: str) -> bool:
        return await self.kv.get(operation_id) is not None
