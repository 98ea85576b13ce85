"""Direct transfer against `copy` on the same snapshot (part of bench/mover.py).

Both run in this process against one SeaweedFS S3 server. The direct transfer goes from a
source mover to a destination mover over a real NATS server, and each mover opens only
its own bucket. `copy` is one process reading the source bucket and writing the
destination bucket. Both destinations are made like the source and start empty, so both
move the whole snapshot.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from services.mover.receive import Receiver
from services.mover.repo.copy import copy_snapshot
from services.mover.repo.repository import Repository
from services.mover.send import Sender
from services.mover.volumes import RepositoryData
from vessel.bus.nats_port import Bus
from vessel.contracts import queries
from vessel.contracts.commands import SendSnapshot
from vessel.objectstore.minio_port import MinioStore
from vessel.sealed.providers.password import PasswordKey
from vessel_dev.rig.processes import NatsServer, S3Server

PASSWORD = "bench-password"
PREFIX = "repository"


async def _send(
    nats: NatsServer, source: RepositoryData, target: RepositoryData, snap: str
) -> None:
    bus = Bus("/clusters/bench/mover")
    await bus.connect(nats.url, "vessel-bench")
    try:

        async def prepare(_name: str) -> RepositoryData:
            return target

        receiver = Receiver("bench-b", bus, prepare)  # served as the mover's inbox serves it
        receiving = await bus.serve(
            queries.XFER_OPEN.format(cluster="bench-b"), receiver.open, queue="mover-bench-b"
        )
        sender = Sender("bench-a", bus, await bus.kv("bench_transfers"), {"a": source}.__getitem__)
        command = SendSnapshot(
            transfer_id=f"bench-{time.time_ns()}",
            operation_id="bench",
            cluster="bench-a",
            source_bucket="a",
            snapshot_id=snap,
            target_cluster="bench-b",
            target_bucket="b",
        )
        await sender.send(command)
        result = await sender.transfers.get(command.transfer_id)
        receiving.cancel()
        if result is None or result.error:
            raise RuntimeError(f"direct transfer failed: {result!r}")
    finally:
        await bus.close()


def direct_transfer_seconds(work: Path, data: Path) -> tuple[float, float]:
    """(seconds of the direct transfer, seconds of `copy`) for a snapshot of `data`."""
    s3, nats = S3Server(work / "s3-direct"), NatsServer(work / "nats-direct")

    def bucket(name: str) -> MinioStore:
        store = MinioStore(s3.endpoint, name, s3.access_key, s3.secret_key)
        store.ensure_bucket()
        return store

    s3.start(ready=lambda: bool(bucket("probe")))
    nats.start()
    try:
        a, b, c = bucket("direct-a"), bucket("direct-b"), bucket("direct-c")
        key = PasswordKey(PASSWORD)
        origin = Repository.init(a, PREFIX, key)
        Repository.init(b, PREFIX, key, like=origin)
        Repository.init(c, PREFIX, key, like=origin)
        source = RepositoryData(a, PREFIX, PasswordKey(PASSWORD))
        snapshot, _ = source.backup(data, None, {}, None)

        started = time.monotonic()
        asyncio.run(_send(nats, source, RepositoryData(b, PREFIX, PasswordKey(PASSWORD)), snapshot))
        direct = time.monotonic() - started

        started = time.monotonic()
        copy_snapshot(Repository.open(a, PREFIX, key), Repository.open(c, PREFIX, key), snapshot)
        return direct, time.monotonic() - started
    finally:
        nats.stop()
        s3.stop()
