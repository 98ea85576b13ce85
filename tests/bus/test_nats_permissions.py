"""nats-server itself enforces the generated permissions: a service that publishes another
service's events, a command it is not meant to send, or into a KV bucket it does not own
is refused by the server, and the refusal names the subject."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest

from tests.support import started
from vessel.bus.errors import BusError
from vessel.bus.nats_port import Bus, NatsAuth
from vessel.config import VesselSettings
from vessel.contracts import permissions, subjects
from vessel.contracts.events import TransferResult
from vessel.runtime import nats_auth
from vessel_dev.rig.processes import NatsServer

PASSWORDS = {s: secrets.token_urlsafe(12) for s in permissions.SERVICES}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(
        tmp_path_factory.mktemp("guarded-nats"),
        config=permissions.authorization(),
        environ=permissions.server_environ(PASSWORDS),
    )
    with started(server):
        yield server


class Client:
    def __init__(self) -> None:
        self.errors: list[str] = []

    async def connect(self, url: str, service: str) -> nats.NATS:
        async def record(error: Exception) -> None:
            self.errors.append(str(error))

        return await nats.connect(
            url, user=service, password=PASSWORDS[service], error_cb=record, name=service
        )

    async def refused(self, subject: str) -> bool:
        for _ in range(40):
            wanted = f'permissions violation for publish to "{subject}"'.lower()
            if any(wanted in e.lower() for e in self.errors):  # the client lowercases it
                return True
            await asyncio.sleep(0.05)
        return False


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    yield Client()


async def test_a_service_cannot_publish_another_services_events(
    guarded: NatsServer, client: Client
) -> None:
    mover = await client.connect(guarded.url, "mover")
    try:
        await mover.publish(subjects.BACKUP_COMPLETED.subject, b"{}")
        await mover.flush()
        assert await client.refused(subjects.BACKUP_COMPLETED.subject)
    finally:
        await mover.close()


async def test_only_protection_sends_forget_and_no_one_writes_anothers_bucket(
    guarded: NatsServer, client: Client
) -> None:
    gateway = await client.connect(guarded.url, "gateway")
    try:
        forget = subjects.FORGET_SNAPSHOTS.subject_for("c1")
        await gateway.publish(forget, b"{}")
        await gateway.publish("$KV.operations.op-1", b"{}")
        await gateway.flush()
        assert await client.refused(forget)
        assert await client.refused("$KV.operations.op-1")
    finally:
        await gateway.close()


async def test_what_a_service_is_meant_to_do_goes_through(guarded: NatsServer) -> None:
    """The mover, as its own user, sets up the streams and publishes its event through
    JetStream (the server acknowledges it); protection receives it."""
    mover, protection = Bus(source="/clusters/c1/mover"), Bus(source="/global/protection")
    await mover.connect(
        guarded.url, "mover", attempts=5, auth=NatsAuth("mover", PASSWORDS["mover"])
    )
    await protection.connect(
        guarded.url, "protection", attempts=5, auth=NatsAuth("protection", PASSWORDS["protection"])
    )
    try:
        seen: asyncio.Queue[TransferResult] = asyncio.Queue()

        async def arrived(result: TransferResult) -> None:
            await seen.put(result)

        durable = f"perm-{secrets.token_hex(4)}"
        await protection.consume(durable, {subjects.TRANSFER_FAILED: arrived}, deliver_new=True)
        result = TransferResult(
            transfer_id="t1", operation_id="op1", cluster="c1", direction="backup", error="x"
        )
        await mover.publish(subjects.TRANSFER_FAILED, result)
        assert (await asyncio.wait_for(seen.get(), 10)).transfer_id == "t1"
        kv = await mover.kv("transfers")
        await kv.put("t1", result.model_dump_json().encode())
        assert (await kv.get("t1")) is not None
    finally:
        await protection.close()
        await mover.close()


async def test_wrong_credentials_are_refused(guarded: NatsServer) -> None:
    bus = Bus(source="/global/gateway")
    with pytest.raises(BusError, match=r"refused the credentials of gateway: .*Authorization"):
        await bus.connect(guarded.url, "gateway", auth=NatsAuth("gateway", "wrong"))


def test_the_server_config_names_no_password(guarded: NatsServer) -> None:
    text = (Path(guarded.workdir) / "nats.conf").read_text()
    assert not any(p in text for p in PASSWORDS.values())


def test_a_service_takes_its_nats_identity_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chart mounts a .creds file and names it in VESSEL_NATS_CREDENTIALS; a user and
    password come from VESSEL_NATS_USER / VESSEL_NATS_PASSWORD (never printed)."""
    monkeypatch.delenv("VESSEL_CONFIG", raising=False)
    monkeypatch.setenv("VESSEL_NATS_CREDENTIALS", "/etc/vessel/nats/nats.creds")
    assert nats_auth(VesselSettings()).options() == {
        "user_credentials": "/etc/vessel/nats/nats.creds"
    }
    monkeypatch.delenv("VESSEL_NATS_CREDENTIALS")
    monkeypatch.setenv("VESSEL_NATS_USER", "mover")
    monkeypatch.setenv("VESSEL_NATS_PASSWORD", "s3cret-pw")
    settings = VesselSettings()
    assert nats_auth(settings).options() == {"user": "mover", "password": "s3cret-pw"}
    assert "s3cret-pw" not in repr(settings)
    monkeypatch.delenv("VESSEL_NATS_PASSWORD")
    with pytest.raises(ValueError, match="nats_user and nats_password go together"):
        VesselSettings()
