"""With NATS gone, an API call ends UNAVAILABLE with a readable message that clients know
to retry, not UNKNOWN with a NATS exception."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from services.gateway.main import build_gateway
from tests.gateway.harness import ADMIN_ENV, ADMIN_TOKEN, Running, bearer, make_settings
from tests.support import started
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.bus.nats_port import Bus
from vessel_dev.rig.processes import NatsServer


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsServer]:
    (tmp_path / "nats").mkdir()
    with started(NatsServer(tmp_path / "nats")) as server:
        yield server


async def test_a_call_while_nats_is_down_is_unavailable(
    own_nats: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VESSEL_CONFIG", raising=False)
    bus = Bus(source="/global/gateway")
    await bus.connect(own_nats.url, "gateway", attempts=5)
    built = await build_gateway(make_settings(), bus, environ={ADMIN_ENV: ADMIN_TOKEN})
    await built.start()
    gateway = Running(built)
    try:
        stub = rpc.OperationServiceStub(gateway.channel())
        listed = await stub.ListOperations(pb.ListOperationsRequest(), metadata=bearer(ADMIN_TOKEN))
        assert list(listed.operations) == []
        own_nats.stop()
        with pytest.raises(grpc.aio.AioRpcError) as down:
            await stub.ListOperations(
                pb.ListOperationsRequest(), metadata=bearer(ADMIN_TOKEN), timeout=30
            )
        assert down.value.code() == grpc.StatusCode.UNAVAILABLE
        details = down.value.details() or ""
        assert details.startswith("Vessel is unavailable: the message bus did not answer")
        assert details.endswith("retry later")
    finally:
        await gateway.close()
        await bus.close()
