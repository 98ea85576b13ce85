"""Joining by token against a real hub nats-server whose authorization callout discovery
answers: a leaf dialling with its token is admitted with its cluster's permissions only,
a token used after its expiry or a wrong one is refused, a joined token keeps working
after the expiry, and revoking cuts the leaf and refuses it from then on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import pytest

from services.discovery.joining import JoinError, Joins
from tests.support import started
from vessel.bus import nats_auth
from vessel.bus.nats_port import Bus, NatsAuth
from vessel.config import VesselSettings
from vessel.contracts import permissions, state, subjects
from vessel.contracts.events import JoinTokenRequest
from vessel.stopping import cancel_and_wait
from vessel_dev.rig.nats_topology import NatsTopology
from vessel_dev.rig.processes import NatsServer

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsTopology]:
    topology = NatsTopology(tmp_path_factory.mktemp("hub"), ())
    with started(topology):
        if not topology.callout_seed:
            pytest.skip("the callout needs a local nats-server (not the container servers)")
        yield topology


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def joins(hub: NatsTopology, tmp_path: Path) -> AsyncIterator[tuple[Joins, Clock, list[str]]]:
    """Joins as the hub's discovery runs them, answering the callout; the third item
    collects each answer's error (empty: admitted)."""
    settings = VesselSettings(
        nats_url=hub.hub.url,
        nats_callout_seed=hub.callout_seed,
        nats_system_password=hub.system_password,
        state_dir=tmp_path,
    )
    bus = Bus(source="/global/discovery")
    await bus.connect(
        hub.hub.url, "discovery", auth=NatsAuth("discovery", hub.passwords["discovery"])
    )
    known = {"taken"}

    async def knows(cluster: str) -> bool:
        return cluster in known

    clock, answers = Clock(), []
    kv = await bus.kv(state.CLUSTER_JOINS.name)
    joining = Joins(kv, settings, knows, clock=clock)

    async def answer(subject: str, body: bytes) -> bytes:
        reply = await joining.authorize(subject, body)
        answers.append(nats_auth.claims_of(reply.decode())["nats"]["error"])
        return reply

    server = await bus.serve(permissions.CALLOUT, answer)
    try:
        yield joining, clock, answers
    finally:
        await cancel_and_wait([server])
        await bus.close()


async def until(check: Callable[[], bool], what: str, seconds: float = 15) -> None:
    for _ in range(int(seconds / 0.1)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def open_leaf(workdir: Path, remote: str) -> NatsServer:
    """A leaf server with no users of its own, dialling the hub at `remote`."""
    leaf = NatsServer(
        workdir,
        config=f"leafnodes {{ remotes = [ {{ url: {json.dumps(remote)} }} ] }}\n",
        jetstream=False,
        name=f"{workdir.name}-leaf",
    )
    workdir.mkdir(parents=True, exist_ok=True)
    leaf.start()
    return leaf


async def test_a_leaf_joins_with_its_token_as_its_cluster_only(
    hub: NatsTopology, joins: tuple[Joins, Clock, list[str]], tmp_path: Path
) -> None:
    """The leaf has no authorization of its own (anyone there may publish anything): what
    the hub admits it to is all that bounds it."""
    joining, clock, answers = joins
    token = await joining.issue(JoinTokenRequest(cluster="edge", ttl_seconds=600))
    leaf = open_leaf(tmp_path / "edge", hub.remote("edge", token.token))
    try:
        await until(lambda: hub.leaf_connections() == 1, "edge's leaf at the hub")
        assert answers == [""]
        record = await joining.get("edge")
        assert record is not None and record.joined_at is not None and record.connection
        assert token.token not in (await joining.kv.get("edge")).value.decode()  # type: ignore[union-attr]

        admin = await nats.connect(hub.hub.url)
        anyone = await nats.connect(leaf.url)
        try:
            seen: list[str] = []

            async def note(msg: nats.aio.msg.Msg) -> None:
                seen.append(msg.subject)

            await admin.subscribe("vessel.evt.>", cb=note)
            await admin.flush()
            ours = subjects.TRANSFER_FAILED.subject_for("edge")
            theirs = subjects.TRANSFER_FAILED.subject_for("cluster-b")
            await asyncio.sleep(0.3)  # the hub's interest reaches the leaf
            await anyone.publish(theirs, b"{}")
            await anyone.publish(ours, b"{}")
            await anyone.flush()
            await until(lambda: ours in seen, "edge's own event at the hub")
            assert theirs not in seen
        finally:
            await admin.close()
            await anyone.close()

        clock.now += timedelta(hours=2)  # past the expiry: a joined token still works
        await joining.revoke("edge")
        await until(lambda: hub.leaf_connections() == 0, "edge's leaf cut")
        await until(lambda: any("no cluster 'edge'" in a for a in answers), "edge refused")
        assert hub.leaf_connections() == 0 and await joining.get("edge") is None
    finally:
        leaf.stop()


async def test_an_expired_or_wrong_token_or_a_bad_name_is_refused(
    hub: NatsTopology, joins: tuple[Joins, Clock, list[str]], tmp_path: Path
) -> None:
    joining, clock, answers = joins
    token = await joining.issue(JoinTokenRequest(cluster="late", ttl_seconds=60))
    clock.now += timedelta(seconds=61)
    late = hub.join("late", token.token)
    wrong = hub.join("wrong", "not-a-token")
    unnamed = open_leaf(tmp_path / "unnamed", hub.remote("Not_A_Label", token.token))
    try:
        await until(lambda: len(set(answers)) >= 3, "all three refused")
        assert any("the join token of cluster late expired at" in a for a in answers)
        assert any("no cluster 'wrong' joins with this token" in a for a in answers)
        assert any("'Not_A_Label' is not a cluster name" in a for a in answers)
        assert "" not in answers and hub.leaf_connections() == 0
    finally:
        for leaf in (late, wrong, unnamed):
            leaf.stop()
        hub.leaves.clear()


async def test_a_token_is_not_issued_for_a_known_cluster_nor_twice_for_a_joined_one(
    hub: NatsTopology, joins: tuple[Joins, Clock, list[str]]
) -> None:
    joining, _, _ = joins
    with pytest.raises(JoinError, match="cluster taken is already registered"):
        await joining.issue(JoinTokenRequest(cluster="taken"))
    first = await joining.issue(JoinTokenRequest(cluster="twice"))
    second = await joining.issue(JoinTokenRequest(cluster="twice"))  # not joined: replaced
    assert first.token != second.token
    leaf = hub.join("twice", first.token)
    try:
        await asyncio.sleep(1)
        assert hub.leaf_connections() == 0  # the replaced token no longer joins
    finally:
        leaf.stop()
        hub.leaves.clear()
    with pytest.raises(ValueError, match="nats_callout_seed: not an nkey seed"):
        Joins(joining.kv, VesselSettings(nats_callout_seed="SAnope"), joining.known)
