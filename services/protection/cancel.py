"""Cancel of a running operation (`vessel.cmd.protection.operation.cancel`), in two steps.

1. The operation moves to Canceling by compare-and-set, so a cancel racing the
   operation's own end loses cleanly: a finished operation is left as it ended. From
   then on it is no longer running: the flows ignore late transfer results (they act only
   on a running operation) and the store keeps the phase whatever finishes late.
2. The cleanup: a backup is complete only with its listing entry `backup.json`, so one
   canceled while its catalog was being written has that entry removed (here, and again
   when its late completion is announced), and a canceled backup never appears in the
   bucket's catalog; then `operation.canceled` tells the movers to stop its transfers.
   Only then is the operation Canceled.

A cancel redelivered after a crash between the two finds Canceling and does the cleanup
again (each part is idempotent); one that finds Canceled has nothing left to do.
"""

from __future__ import annotations

import logging

from services.protection.context import ProtectionContext
from services.protection.state.operations import CANCELED, running
from vessel.bus.errors import TemporaryError
from vessel.contracts import subjects
from vessel.contracts.events import BackupEvent
from vessel.contracts.operations import Operation, Phase
from vessel.contracts.protection import CancelOperation, OperationCanceled
from vessel.contracts.state import BACKUP_LISTING, backup_key
from vessel.sealed.documents import SealedStore

log = logging.getLogger("vessel.protection.cancel")


def _drop_listing(sb: SealedStore, backup_id: str) -> None:
    sb.store.delete(backup_key(backup_id, BACKUP_LISTING))


class CancelFlow:
    def __init__(self, p: ProtectionContext) -> None:
        self.p = p

    async def on_command(self, cmd: CancelOperation) -> None:
        op = await self.p.operations.get(cmd.operation_id)
        if op is None:  # accepted by the gateway, not yet started here: try again soon
            raise TemporaryError(f"operation {cmd.operation_id} is not started yet", delay=1)
        if op.phase == Phase.CANCELED:
            return  # canceled and cleaned up before (a repeated command)
        if op.done:
            log.info("operation %s already ended %s; not canceled", op.id, op.phase)
            return
        who = cmd.requested_by

        def canceling(o: Operation) -> None:
            if running(o):
                o.phase, o.message = Phase.CANCELING, f"canceled by {who}"

        op = await self.p.operations.change(op.id, canceling)
        if op.phase != Phase.CANCELING:
            return  # it ended first
        await self._clean_up(op, who)

        def canceled(o: Operation) -> None:
            o.phase = Phase.CANCELED

        await self.p.operations.change(op.id, canceled)
        log.info("operation %s canceled by %s", op.id, who)

    async def _clean_up(self, op: Operation, who: str) -> None:
        """What a canceled operation must not leave behind, then the movers told to stop."""
        if op.kind == "backup" and op.bucket:
            await self.p.in_bucket(op.bucket, lambda s: _drop_listing(s, op.id))
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
        """A completion announced after the cancel won: its listing entry must not stay."""
        op = await self.p.operations.get(event.operation_id)
        if op is not None and op.phase in CANCELED and op.bucket:
            await self.p.in_bucket(op.bucket, lambda s: _drop_listing(s, op.id))
