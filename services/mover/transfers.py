"""Command handlers: back a volume up into a bucket's repository, or restore one.

A transfer's outcome is recorded in the `transfers` KV bucket (owned by the mover,
`state.TransferRecords`), so a redelivered command answers with the recorded result
instead of copying again. Progress is published about once a second while a transfer runs.
Every kind of transfer (here and the direct `send`) is a `TransferWorker` built on the
mover's context.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Literal, Self

from opentelemetry.trace import Span

from services.mover.cancels import CANCELED, Cancels
from services.mover.context import MoverContext
from services.mover.repo.errors import RepositoryError
from services.mover.repo.progress import Progress, TransferStopped
from services.mover.state import TransferRecords
from services.mover.volumes import ProgressFn, RepositoryData, VolumeData
from vessel.bus.errors import PermanentError, TemporaryError
from vessel.bus.nats_port import Bus, KeyValue
from vessel.contracts import subjects
from vessel.contracts.commands import CopySnapshot, MoveFromBucket, MoveToBucket, SendSnapshot
from vessel.contracts.events import TransferProgress, TransferResult
from vessel.objectstore.base import ObjectStoreError, StoreUnavailable
from vessel.sealed.errors import KeyServiceUnreachable
from vessel.telemetry import metrics, tracing

log = logging.getLogger("vessel.mover")
DataFor = Callable[[str], VolumeData]
Direction = Literal["backup", "restore", "copy"]
TransferCommand = MoveToBucket | MoveFromBucket | CopySnapshot | SendSnapshot
Refusal = Callable[[TransferCommand, str], Awaitable[None]]
STORE_RETRY_SECONDS = 5.0
"""First wait before a transfer is tried again while its store is unreachable (the bus
doubles it each delivery: 5, 10, 20, 40 s, then `gave_up`); the setting
`store_retry_seconds`."""


def transfer_span(base: TransferResult) -> AbstractContextManager[Span]:
    """The span of one transfer's repository work; `record` completes it."""
    return tracing.span(
        "mover.transfer",
        {
            "vessel.transfer.id": base.transfer_id,
            "vessel.transfer.direction": base.direction,
            "vessel.operation.id": base.operation_id,
        },
    )


def record(result: TransferResult, started: float, span: Span) -> None:
    """A finished transfer in the metrics and its span."""
    outcome = "failed" if result.error else "completed"
    metrics.TRANSFERS.labels(result.direction, outcome).inc()
    metrics.TRANSFER_BYTES.labels(result.direction).inc(result.bytes)
    metrics.TRANSFER_SECONDS.labels(result.direction).observe(time.monotonic() - started)
    span.set_attributes(
        {"vessel.transfer.bytes": result.bytes, "vessel.transfer.files": result.files}
    )
    if result.error:
        tracing.fail(span, result.error)


class TransferWorker:
    """What every kind of transfer shares: its result kept in KV `transfers` (a repeated
    command announces the kept result again) and announced on the transfer's subject."""

    def __init__(
        self,
        cluster_id: str,
        bus: Bus,
        transfers: KeyValue,
        data_for: DataFor,
        cancels: Cancels | None = None,
        retry_seconds: float = STORE_RETRY_SECONDS,
    ) -> None:
        self.cluster_id = cluster_id
        self.bus = bus
        self.transfers = TransferRecords(transfers, cluster_id)
        self.data_for = data_for
        self.cancels = cancels
        self.retry_seconds = retry_seconds
        """First wait before a transfer whose store is unreachable is tried again."""

    @classmethod
    def on(cls, ctx: MoverContext) -> Self:
        """The worker of `ctx`'s cluster, sharing its buckets, records and cancels."""
        return cls(
            ctx.cluster_id,
            ctx.bus,
            ctx.transfers,
            ctx.buckets.data_for,
            ctx.cancels,
            retry_seconds=ctx.settings.store_retry_seconds,
        )

    def refusal(self, direction: Direction) -> Refusal:
        """How a command is answered whose buckets cannot be opened: a failed transfer, so
        the operation waiting for its answer ends instead of waiting forever."""

        async def refuse(cmd: TransferCommand, error: str) -> None:
            result = TransferResult(
                transfer_id=cmd.transfer_id,
                operation_id=cmd.operation_id,
                cluster=self.cluster_id,
                direction=direction,
                error=error,
            )
            await self.bus.publish(subjects.TRANSFER_FAILED, result)

        return refuse

    async def gave_up(self, cmd: TransferCommand, error: str) -> None:
        """A transfer command given up after its last delivery (a store away for longer
        than the retries last): its failed result is recorded and announced, so the
        operation waiting for it ends, naming why."""
        direction: Direction = (
            "backup"
            if isinstance(cmd, MoveToBucket)
            else "restore"
            if isinstance(cmd, MoveFromBucket)
            else "copy"
        )
        await self._finish(self._base(cmd, direction).model_copy(update={"error": error}))

    def _base(
        self, cmd: TransferCommand, direction: Direction, snapshot_id: str = ""
    ) -> TransferResult:
        """The result of `cmd` before it ran: no data moved, no error."""
        return TransferResult(
            transfer_id=cmd.transfer_id,
            operation_id=cmd.operation_id,
            cluster=self.cluster_id,
            direction=direction,
            snapshot_id=snapshot_id,
        )

    async def _replay(self, transfer_id: str) -> bool:
        recorded = await self.transfers.get(transfer_id)
        if recorded is None:
            return False
        await self._announce(recorded)
        return True

    async def _finish(self, result: TransferResult) -> None:
        await self.transfers.put(result)
        await self._announce(result)

    async def _announce(self, result: TransferResult) -> None:
        message = subjects.TRANSFER_FAILED if result.error else subjects.TRANSFER_COMPLETED
        subject = f"/clusters/{self.cluster_id}/transfers/{result.transfer_id}"
        await self.bus.publish(message, result, subject=subject)


class Mover(TransferWorker):
    """Transfers between a volume and a bucket's repository, and copies between buckets."""

    def _reporter(
        self,
        cmd: MoveToBucket | MoveFromBucket,
        direction: Literal["backup", "restore"],
    ) -> ProgressFn:
        loop = asyncio.get_running_loop()

        def report(progress: Progress) -> None:
            if self.cancels is not None and self.cancels.flagged(cmd.operation_id):
                raise TransferStopped(f"operation {cmd.operation_id} was canceled")
            rate, total = progress.rate, progress.total
            eta = max(total - progress.bytes, 0) / rate if total and rate > 0 else None
            event = TransferProgress(
                transfer_id=cmd.transfer_id,
                operation_id=cmd.operation_id,
                cluster=self.cluster_id,
                direction=direction,
                files=progress.files,
                bytes=progress.bytes,
                skipped_bytes=progress.skipped,
                bytes_per_second=rate,
                total_bytes=total,
                total_files=progress.total_files,
                eta_seconds=eta,
            )
            asyncio.run_coroutine_threadsafe(
                self.bus.publish(subjects.TRANSFER_PROGRESS, event), loop
            )

        return report

    async def _run(
        self,
        cmd: MoveToBucket | MoveFromBucket,
        base: TransferResult,
        path: Path,
        work: Callable[[], TransferResult],
    ) -> None:
        if not await asyncio.to_thread(path.is_dir):
            await self._finish(base.model_copy(update={"error": f"{path} is not a directory"}))
            return
        canceled = base.model_copy(update={"error": CANCELED})
        if self.cancels is not None and await self.cancels.is_canceled(cmd.operation_id):
            await self._finish(canceled)
            return
        started = time.monotonic()
        with transfer_span(base) as span:
            try:
                if self.cancels is None:
                    result = await asyncio.to_thread(work)
                else:
                    result = await self.cancels.run(cmd.operation_id, work) or canceled
            except (StoreUnavailable, KeyServiceUnreachable) as exc:
                raise TemporaryError(str(exc), delay=self.retry_seconds) from exc
            except (ObjectStoreError, RepositoryError, OSError) as exc:
                log.warning("transfer %s failed: %s", cmd.transfer_id, exc)
                result = base.model_copy(update={"error": f"{type(exc).__name__}: {exc}"})
            record(result, started, span)
        await self._finish(result)

    async def to_bucket(self, cmd: MoveToBucket) -> None:
        if await self._replay(cmd.transfer_id):
            return
        base = self._base(cmd, "backup")
        report = self._reporter(cmd, "backup")

        def work() -> TransferResult:
            parent_source = Path(cmd.parent_source_path) if cmd.parent_source_path else None
            snapshot_id, doc = self.data_for(cmd.bucket).backup(
                Path(cmd.source_path), cmd.parent_snapshot, dict(cmd.tags), report, parent_source
            )
            log.info(
                "transfer %s: %d files, %d bytes, snapshot %s",
                cmd.transfer_id,
                doc.files,
                doc.bytes,
                snapshot_id,
            )
            return base.model_copy(
                update={"files": doc.files, "bytes": doc.bytes, "snapshot_id": snapshot_id}
            )

        await self._run(cmd, base, Path(cmd.source_path), work)

    async def from_bucket(self, cmd: MoveFromBucket) -> None:
        if await self._replay(cmd.transfer_id):
            return
        base = self._base(cmd, "restore", cmd.snapshot_id)
        report = self._reporter(cmd, "restore")

        def work() -> TransferResult:
            stats = self.data_for(cmd.bucket).restore(
                cmd.snapshot_id,
                Path(cmd.target_path),
                report,
                cmd.paths,
                cmd.target_dir,
                cmd.verify,
            )
            return base.model_copy(update={"files": stats.files, "bytes": stats.bytes})

        await self._run(cmd, base, Path(cmd.target_path), work)

    async def copy(self, cmd: CopySnapshot) -> None:
        """Copy a snapshot between two buckets' repositories (the `like` pair)."""
        if await self._replay(cmd.transfer_id):
            return
        base = self._base(cmd, "copy")
        started = time.monotonic()
        source, target = self.data_for(cmd.source_bucket), self.data_for(cmd.target_bucket)
        if not isinstance(source, RepositoryData) or not isinstance(target, RepositoryData):
            raise PermanentError("copies need repository-backed buckets")
        with transfer_span(base) as span:
            try:
                snapshot_id, stats = await asyncio.to_thread(
                    source.copy_to, target, cmd.snapshot_id
                )
                result = base.model_copy(
                    update={"snapshot_id": snapshot_id, "bytes": stats.copied_bytes}
                )
            except (StoreUnavailable, KeyServiceUnreachable) as exc:
                raise TemporaryError(str(exc), delay=self.retry_seconds) from exc
            except (ObjectStoreError, RepositoryError) as exc:
                result = base.model_copy(update={"error": f"{type(exc).__name__}: {exc}"})
            record(result, started, span)
        await self._finish(result)
