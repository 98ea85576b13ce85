"""nats-server holds each cluster to its own subjects: the cluster's leaf server refuses
its agents another cluster's events, and the hub drops what a leaf forwards beyond its
cluster's permissions, so even a cluster whose own NATS was opened up cannot speak for
another cluster or write its KV keys."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.js.errors
import pytest
from nats.aio.client import Client

from tests.support import started
from vessel.bus.errors import BusError, KeyExistsError
from vessel.bus.nats_port import Bus, NatsAuth
from vessel.contracts import state, subjects
from vessel.contracts.events import TransferResult
from vessel.stopping import cancel_and_wait
from vessel_dev.rig.nats_topology import DOMAIN, NatsTopology
from vessel_dev.rig.processes import NatsServer, wait_until

pytestmark = pytest.mark.timeout(90)
REFUSED = (nats.js.errors.NoStreamResponseError, nats.errors.TimeoutError)
"""What a JetStream publish the hub never receives ends in."""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsTopology]:
    topology = NatsTopology(tmp_path_factory.mktemp("fleet"), ("cluster-a", "cluster-b"))
    with started(topology):
        if not topology.leaves:
            pytest.skip("leaf nodes need a local nats-server (not the container servers)")
        yield topology


async def leaf_mover(fleet: NatsTopology) -> tuple[Client, list[str]]:
    """cluster-a's mover on its leaf, and the errors the server sends it (lower case)."""
    errors: list[str] = []

    async def record(error: Exception) -> None:
        errors.append(str(error).lower())

    mover = await nats.connect(
        fleet.leaves["cluster-a"].url,
        user="mover",
        password=fleet.passwords["mover"],
        error_cb=record,
    )
    return mover, errors


async def violation(errors: list[str], subject: str) -> None:
    """Wait for the server's refusal of a publish to `subject`."""
    wanted = f'permissions violation for publish to "{subject.lower()}"'
    for _ in range(40):
        if any(wanted in e for e in errors):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no refusal of {subject}: {errors}")


async def streams(fleet: NatsTopology) -> None:
    admin = Bus(source="/global/tests")
    await admin.connect(fleet.hub.url, "tests")
    try:
        await admin.ensure_streams()
        await admin.ensure_buckets(b.name for b in state.KV_BUCKETS)  # as the hub's discovery
    finally:
        await admin.close()


def failed(cluster: str) -> bytes:
    result = TransferResult(
        transfer_id="t", operation_id="op", cluster=cluster, direction="backup", error="x"
    )
    return result.model_dump_json().encode()


async def test_a_clusters_mover_cannot_publish_for_another_cluster(fleet: NatsTopology) -> None:
    await streams(fleet)
    mover, errors = await leaf_mover(fleet)
    try:
        js = mover.jetstream(domain="hub")
        ours = subjects.TRANSFER_FAILED.subject_for("cluster-a")
        theirs = subjects.TRANSFER_FAILED.subject_for("cluster-b")
        assert (await js.publish(ours, failed("cluster-a"))).stream == subjects.EVENTS_STREAM
        await mover.publish(theirs, failed("cluster-b"))
        await mover.publish("$JS.hub.API.$KV.transfers.cluster-b.t", b"{}")
        await mover.flush()
        for refused in (theirs, "$JS.hub.API.$KV.transfers.cluster-b.t"):
            await violation(errors, refused)
    finally:
        await mover.close()


async def test_the_hub_drops_what_an_opened_up_leaf_forwards_for_another_cluster(
    fleet: NatsTopology, tmp_path: Path
) -> None:
    """A leaf server of cluster-a with no authorization of its own (anyone there may publish
    anything) still reaches the hub as cluster-a's leaf user: the hub stores its own
    cluster's event and never the other's."""
    remote = json.dumps(fleet.remote("cluster-a"))
    rogue = NatsServer(
        tmp_path / "rogue",
        config=f"leafnodes {{ remotes = [ {{ url: {remote} }} ] }}\n",
        jetstream=False,
        name="rogue-leaf",
    )
    await streams(fleet)
    rogue.workdir.mkdir(parents=True, exist_ok=True)
    rogue.start()
    try:
        wait_until(lambda: fleet.leaf_connections() == 3, 15, "the rogue leaf at the hub")
        anyone = await nats.connect(rogue.url)
        admin = await nats.connect(fleet.hub.url)
        try:
            js = anyone.jetstream(domain="hub")
            ours = subjects.TRANSFER_FAILED.subject_for("cluster-a")
            assert (await js.publish(ours, failed("cluster-a"))).stream == subjects.EVENTS_STREAM
            theirs = subjects.TRANSFER_FAILED.subject_for("cluster-b")
            with pytest.raises(REFUSED):
                await js.publish(theirs, failed("cluster-b"), timeout=2)
            with pytest.raises(REFUSED):
                await js.publish(subjects.BACKUP_COMPLETED.subject, b"{}", timeout=2)
            hub = admin.jetstream()
            info = await hub.stream_info(subjects.EVENTS_STREAM, subjects_filter=theirs)
            assert not (info.state.subjects or {}).get(theirs)
        finally:
            await anyone.close()
            await admin.close()
    finally:
        rogue.stop()


async def test_a_clusters_agent_reads_and_writes_its_own_kv_keys_through_the_leaf(
    fleet: NatsTopology,
) -> None:
    """Across the leaf, writes go through the hub's domain and reads name the stream's own
    subjects: both work, and another cluster's keys stay out of reach."""
    await streams(fleet)
    mover = Bus(source="/clusters/cluster-a/mover")
    auth = NatsAuth("mover", fleet.passwords["mover"], jetstream_domain=DOMAIN)
    await mover.connect(fleet.leaves["cluster-a"].url, "mover", attempts=5, auth=auth)
    try:
        kv = await mover.kv(state.TRANSFERS.name)
        revision = await kv.put("cluster-a.t1", b"one")
        entry = await kv.get("cluster-a.t1")
        assert entry is not None and (entry.value, entry.revision) == (b"one", revision)
        await kv.update("cluster-a.t1", b"two", revision)
        with pytest.raises(KeyExistsError):
            await kv.update("cluster-a.t1", b"stale", revision)
        with pytest.raises(KeyExistsError):
            await kv.create("cluster-a.t1", b"again")
        await kv.delete("cluster-a.t1")
        assert await kv.get("cluster-a.t1") is None
        await kv.create("cluster-a.t1", b"over the tombstone")
        assert "cluster-a.t1" in await kv.keys(under="cluster-a")
        with pytest.raises(REFUSED):
            await kv.put("cluster-b.t1", b"not ours")
    finally:
        await mover.close()


async def test_a_clusters_agent_cannot_touch_streams_nor_another_clusters_consumers(
    fleet: NatsTopology,
) -> None:
    """Through its leaf, cluster-a's mover uses its own durable consumer, but may not purge
    or delete a stream, delete cluster-b's consumer, nor pull cluster-b's commands."""
    await streams(fleet)
    admin = Bus(source="/global/tests")
    await admin.connect(fleet.hub.url, "tests")
    theirs = await admin.consume(
        "mover-cluster-b", {subjects.MOVE_TO_BUCKET: _ignore}, cluster="cluster-b"
    )
    mover, errors = await leaf_mover(fleet)
    try:
        js = mover.jetstream(domain="hub")
        ours = nats.js.api.ConsumerConfig(
            durable_name="mover-cluster-a", filter_subject="vessel.cmd.mover.cluster-a.>"
        )
        await js.add_consumer(subjects.COMMANDS_STREAM, ours)
        assert (await js.consumer_info(subjects.COMMANDS_STREAM, "mover-cluster-a")).name
        stream, api = subjects.COMMANDS_STREAM, "$JS.hub.API"
        refused = (
            f"{api}.STREAM.PURGE.{stream}",
            f"{api}.STREAM.DELETE.{stream}",
            f"{api}.STREAM.UPDATE.{stream}",
            f"{api}.CONSUMER.DELETE.{stream}.mover-cluster-b",
            f"{api}.CONSUMER.MSG.NEXT.{stream}.mover-cluster-b",
            f"{api}.CONSUMER.DURABLE.CREATE.{stream}.mover-cluster-b",
        )
        for subject in refused:
            await mover.publish(subject, b"{}")
        await mover.flush()
        for subject in refused:
            await violation(errors, subject)
        assert await admin.js.consumer_info(stream, "mover-cluster-b")
    finally:
        await cancel_and_wait([theirs])
        await admin.js.delete_consumer(subjects.COMMANDS_STREAM, "mover-cluster-b")
        await admin.js.delete_consumer(subjects.COMMANDS_STREAM, "mover-cluster-a")
        await admin.close()
        await mover.close()


async def _ignore(event: object) -> None:
    """A handler that is never called (no command is sent)."""


async def test_an_agent_starting_while_the_hub_is_away_waits_for_it(
    fleet: NatsTopology,
) -> None:
    """Its leaf takes the connection, but JetStream is the hub's: the bus waits for it
    instead of ending the agent, and works once the hub is back; a KV call while the hub is
    away again fails as a `BusError` naming it. (Last in the module: the hub restarts.)"""
    await streams(fleet)
    fleet.hub.stop()
    mover = Bus(source="/clusters/cluster-a/mover")
    auth = NatsAuth("mover", fleet.passwords["mover"], jetstream_domain=DOMAIN)
    connecting = asyncio.create_task(
        mover.connect(fleet.leaves["cluster-a"].url, "mover", attempts=60, auth=auth)
    )
    try:
        await asyncio.sleep(2.0)
        assert not connecting.done(), "the bus gave up while the hub was away"
        fleet.hub.start()
        await asyncio.wait_for(connecting, 30)
        kv = await mover.kv(state.TRANSFERS.name)
        await kv.put("cluster-a.after-restart", b"{}")
        assert await kv.get("cluster-a.after-restart") is not None
        fleet.hub.stop()  # away again: a KV call says so as the bus's own error
        try:
            with pytest.raises(BusError, match="JetStream is unavailable"):
                await kv.keys()
            with pytest.raises(BusError, match="JetStream is unavailable"):
                await kv.get("cluster-a.after-restart")
        finally:
            fleet.hub.start()
    finally:
        connecting.cancel()
        await mover.close()
