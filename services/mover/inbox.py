"""What the mover of one cluster listens to, in start order.

- reads of a backup's files (`vessel.query.mover.<cluster>.files`);
- the direct-transfer `open` requests of other clusters' movers, and a loop ending idle
  sessions (the sessions' own responders are started by `Receiver.open`, at run time);
- `protection.operation.canceled`: the transfers of a canceled operation stop;
- its transfer commands: `backup`, `restore`, `copy` and `send`, `mover_transfers` at
  once (the volumes of one app move in parallel);
- `forget`, on a consumer of its own: a prune waiting for running backups never holds up
  transfers.

Each command is handled once the buckets it names are opened (`MoverBuckets.preparing`);
a bucket that cannot be opened is answered at once (a failed transfer, or a forget with
its error).
"""

from __future__ import annotations

from services.mover.context import MoverContext
from services.mover.files import FileReads
from services.mover.forget import Forgetter
from services.mover.receive import Receiver
from services.mover.send import Sender
from services.mover.transfers import Mover
from vessel.bus.inbox import Consumer, Loop, Responder, Row
from vessel.contracts import queries, subjects


def rows(ctx: MoverContext) -> list[Row]:
    """The mover's inbox; the handlers share `ctx` (buckets, cancels, transfer records)."""
    cluster, prepared = ctx.cluster_id, ctx.buckets.preparing
    mover, sender, forgetter = Mover.on(ctx), Sender.on(ctx), Forgetter.on(ctx)
    return [
        *receiving(Receiver.on(ctx)),
        Responder(
            queries.QUERY_MOVER_FILES.format(cluster=cluster),
            FileReads(ctx.buckets).on_request,
            queue=f"mover-{cluster}",
        ),
        Consumer(
            f"mover-{cluster}-cancels",
            {subjects.OPERATION_CANCELED: ctx.cancels.on_canceled},
            deliver_new=True,
        ),
        Consumer(
            f"mover-{cluster}",
            {
                subjects.MOVE_TO_BUCKET: prepared(
                    mover.to_bucket, ("bucket",), mover.refusal("backup")
                ),
                subjects.MOVE_FROM_BUCKET: prepared(
                    mover.from_bucket, ("bucket",), mover.refusal("restore")
                ),
                subjects.COPY_SNAPSHOT: prepared(
                    mover.copy, ("source_bucket", "target_bucket"), mover.refusal("copy")
                ),
                subjects.SEND_SNAPSHOT: prepared(
                    sender.send, ("source_bucket",), sender.refusal("copy")
                ),
            },
            cluster=cluster,
            gave_up=mover.gave_up,
            concurrency=ctx.settings.mover_transfers,
        ),
        Consumer(
            f"mover-{cluster}-forget",
            {
                subjects.FORGET_SNAPSHOTS: prepared(
                    forgetter.on_forget, ("bucket",), forgetter.refuse
                )
            },
            cluster=cluster,
            gave_up=forgetter.refuse,
        ),
    ]


def receiving(receiver: Receiver) -> list[Row]:
    """The destination side of direct transfers: one replica takes each `open` (a queue
    group) and serves that session's subjects itself."""
    cluster = receiver.cluster_id
    return [
        Responder(
            queries.XFER_OPEN.format(cluster=cluster), receiver.open, queue=f"mover-{cluster}"
        ),
        Loop(f"xfer-receiver:{cluster}", receiver.end_idle_sessions),
    ]
