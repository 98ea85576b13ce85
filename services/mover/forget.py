"""`mover.<cluster>.forget`: drop repository snapshots of a deleted backup and prune the data
no remaining snapshot references, answered with `mover.snapshots.forgotten`.

Idempotent: forgetting a snapshot that is gone succeeds, a second prune finds nothing to
delete, and a bucket without a repository has nothing to forget. A prune already running
on the repository, or the store being unreachable, is retried later; a repository that
cannot be read (wrong password, corruption) is answered with `error`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Self

from services.mover.context import MoverContext
from services.mover.repo.errors import RepositoryError, RepositoryMissing
from services.mover.repo.maintenance import PruneReport, RepositoryBusy, forget, prune
from services.mover.repo.repository import Repository
from services.mover.volumes import RepositoryData, VolumeData
from vessel.bus.errors import PermanentError, TemporaryError
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.commands import ForgetSnapshots
from vessel.contracts.events import SnapshotsForgotten
from vessel.objectstore.base import ObjectLocked, ObjectStoreError, StoreUnavailable

log = logging.getLogger("vessel.mover.forget")
PRUNE_WAIT_SECONDS = 600.0
"""How long a prune waits for running backups of the repository before retrying later."""


class Forgetter:
    """Forgets a deleted backup's snapshots in a bucket's repository, and prunes."""

    def __init__(self, cluster_id: str, bus: Bus, data_for: Callable[[str], VolumeData]) -> None:
        self.cluster_id = cluster_id
        self.bus = bus
        self.data_for = data_for

    @classmethod
    def on(cls, ctx: MoverContext) -> Self:
        return cls(ctx.cluster_id, ctx.bus, ctx.buckets.data_for)

    async def refuse(self, cmd: ForgetSnapshots, error: str) -> None:
        """The answer when the bucket cannot be opened or the command was given up, so the
        deletion waiting for it ends."""
        answer = SnapshotsForgotten(
            operation_id=cmd.operation_id,
            cluster=self.cluster_id,
            bucket=cmd.bucket,
            snapshot_ids=list(cmd.snapshot_ids),
            error=error,
        )
        await self.bus.publish(subjects.SNAPSHOTS_FORGOTTEN, answer)

    def _work(self, data: RepositoryData, cmd: ForgetSnapshots) -> PruneReport:
        try:
            repo = Repository.open(data.store, data.prefix, data.key)
        except RepositoryMissing:
            return PruneReport(notes=["no repository in this bucket"])
        locked = forget(repo, list(cmd.snapshot_ids))
        if locked:
            # Protection deletes a backup only once its documents are free, and they were
            # written after its snapshots: this is a clock far off, or a manual call.
            raise ObjectLocked(
                repo.path("snapshots", min(locked, key=locked.__getitem__)),
                "snapshots",
                max(locked.values()),
            )
        if not cmd.prune:
            return PruneReport()
        return prune(repo, wait_limit=PRUNE_WAIT_SECONDS)

    async def on_forget(self, cmd: ForgetSnapshots) -> None:
        data = self.data_for(cmd.bucket)
        if not isinstance(data, RepositoryData):
            raise PermanentError(f"bucket {cmd.bucket} is not repository-backed")
        answer = SnapshotsForgotten(
            operation_id=cmd.operation_id,
            cluster=self.cluster_id,
            bucket=cmd.bucket,
            snapshot_ids=list(cmd.snapshot_ids),
        )
        try:
            report = await asyncio.to_thread(self._work, data, cmd)
        except (RepositoryBusy, StoreUnavailable) as exc:
            raise TemporaryError(f"bucket {cmd.bucket}: {exc}", delay=10) from exc
        except (RepositoryError, ObjectStoreError) as exc:
            log.warning("forget for %s in %s failed: %s", cmd.operation_id, cmd.bucket, exc)
            answer = answer.model_copy(update={"error": f"{type(exc).__name__}: {exc}"})
        else:
            answer = answer.model_copy(
                update={
                    "deleted_packs": report.deleted_packs,
                    "deleted_bytes": report.deleted_bytes,
                }
            )
            log.info(
                "forgot %d snapshots in %s, pruned %d packs (%d bytes)",
                len(cmd.snapshot_ids),
                cmd.bucket,
                report.deleted_packs,
                report.deleted_bytes,
            )
        await self.bus.publish(
            subjects.SNAPSHOTS_FORGOTTEN,
            answer,
            subject=f"/clusters/{self.cluster_id}/buckets/{cmd.bucket}/forget/{cmd.operation_id}",
        )
