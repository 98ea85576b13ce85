"""Cancel of a running operation (`vessel.cmd.protection.operation.cancel`).

The operation is marked Canceled by compare-and-set, so a cancel racing the operation's
own end loses cleanly: a finished operation is left as it ended. Once Canceled, the flows
ignore late transfer results (they act only on an operation still running) and the store
keeps the phase Canceled whatever finishes late. A backup is complete only with its
`backup.json`: one canceled while its catalog was being written has that file removed,
here and again when its late completion is announced, so a canceled backup never
appears in the bucket's catalog.
"""

from __future__ import annotations

import logging

from services.protection.bucket_catalog import LISTING, prefix
from services.protection.context import Protection
from vessel.bus.errors import TemporaryError
from vessel.contracts import subjects
from vessel.contracts.events import BackupEvent
from vessel.contracts.operations import Operation
from vessel.contracts.protection import CancelOperation, OperationCanceled
from vessel.sealed.documents import SealedStore

log = logging.getLogger("vessel.protection.cancel")


def _drop_catalog(sb: SealedStore, backup_id: str) -> None:
    sb.store.delete(f"{prefix(backup_id)}/{LISTING}")


class CancelFlow:
    def __init__(self, p: Protection) -> None:
        self.p = p

    async def on_command(self, cmd: CancelOperation) -> None:
        op = await self.p.operations.get(cmd.operation_id)
        if op is None:  # accepted by the gateway, not yet started here: try again soon
            raise TemporaryError(f"operation {cmd.operation_id} is not started yet", delay=1)
        if op.done and op.phase != "Canceled":
            log.info("operation %s already ended %s; not canceled", op.id, op.phase)
            return
        who = cmd.requested_by

        def cancel(o: Operation) -> None:
            if not o.done:
                o.phase, o.message = "Canceled", f"canceled by {who}"

        op = await self.p.operations.change(op.id, cancel)
        if op.phase != "Canceled":
            return  # it ended first
        if op.kind == "backup" and op.bucket:
            await self.p.in_bucket(op.bucket, lambda s: _drop_catalog(s, op.id))
        log.info("operation %s canceled by %s", op.id, who)
        await self.p.bus.publish(
            subjects.OPERATION_CANCELED,
            OperationCanceled(
                operation_id=op.id,
                kind=op.kind,
                requested_by=who,
                transfer_ids=[w.transfer_id for w in op.volumes],
            ),
        )

    async def on_backup_completed(self, event: BackupEvent) -> None:
        """A completion announced after the cancel won: its catalog must not stay."""
        op = await self.p.operations.get(event.operation_id)
        if op is not None and op.phase == "Canceled" and op.bucket:
            await self.p.in_bucket(op.bucket, lambda s: _drop_catalog(s, op.id))
