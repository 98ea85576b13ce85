"""Results of work another service did for an operation, handed to the flow that owns the
operation: a mover's transfer (backup, restore or file restore) and a provisioner's group of
VolumeSnapshots (a backup's own snapshot, or an app snapshot). The events carry only the
operation id, so its kind decides."""

from __future__ import annotations

from services.protection.backup import BackupFlow
from services.protection.context import ProtectionContext
from services.protection.files import FileRestoreFlow
from services.protection.restore import RestoreFlow
from services.protection.snapshot import SnapshotFlow
from vessel.contracts.events import TransferResult
from vessel.contracts.group_snapshots import GroupSnapshotResult


class ResultRouter:
    def __init__(
        self,
        p: ProtectionContext,
        backups: BackupFlow,
        restores: RestoreFlow,
        snapshots: SnapshotFlow,
        files: FileRestoreFlow,
    ) -> None:
        self.p = p
        self.backups, self.restores, self.snapshots = backups, restores, snapshots
        self.files = files

    async def on_transfer(self, result: TransferResult) -> None:
        op = await self.p.operations.get(result.operation_id)
        if op is None:
            return
        if op.kind == "backup":
            await self.backups.on_transfer(result)
        elif op.kind == "restore-files":
            await self.files.on_transfer(result)
        else:
            await self.restores.on_transfer(result)

    async def on_group(self, result: GroupSnapshotResult) -> None:
        op = await self.p.operations.get(result.operation_id)
        if op is None:
            return
        if op.kind == "backup":
            await self.backups.on_group(result)
        else:
            await self.snapshots.on_group(result)
