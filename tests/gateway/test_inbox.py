"""The gateway's inbox serves every service of every proto file once, each added by the
register function of its own file; and a cancel treats protection's Canceling as accepted
and under way: Canceled is the answer when it comes within the wait, Canceling when not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from services.gateway import inbox
from services.gateway.auth import authz, policy
from services.gateway.context import GatewayContext
from services.gateway.errors import ApiError
from services.gateway.v1.vessel.operations import PHASES, cancel_operation
from tests.gateway.harness import make_settings
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.operations import Operation, Phase
from vessel.contracts.protection import CancelOperation

FILES = {f.name.rsplit("/", 1)[-1].removesuffix(".proto"): f for f in policy.FILES}
"""`vessel`, `protection`, `infra`, `tokens`: the descriptors of the proto files."""


async def test_every_service_of_every_proto_file_is_served_once(bus: Bus) -> None:
    ctx = await GatewayContext.open(make_settings(), bus)
    rows = inbox.rpcs(ctx)
    served = [type(row.servicer).__name__ for row in rows]
    declared = [s for f in FILES.values() for s in f.services_by_name]
    assert sorted(served) == sorted(declared)
    server = grpc.aio.server()
    for row in rows:
        file = row.register.__module__.split(".")[-2]  # services.gateway.v1.<file>.register
        assert type(row.servicer).__name__ in FILES[file].services_by_name, row
        row.register(row.servicer, server)
    await server.stop(None)


def test_canceling_is_a_phase_to_list_by() -> None:
    assert "Canceling" in PHASES and set(PHASES) == {p.value for p in Phase}


@dataclass
class Protection:
    """Stands in for the bus and protection: records the cancel commands and answers each
    read of the operation with the next phase of `phases` (the last one stays)."""

    op: Operation
    phases: list[Phase]
    sent: list[CancelOperation] = field(default_factory=list)

    @property
    def bus(self) -> Protection:
        return self

    async def publish(self, message: subjects.Message, payload: Any) -> None:
        assert message == subjects.CANCEL_OPERATION
        self.sent.append(payload)

    async def operation(self, op_id: str) -> Operation:
        assert op_id == self.op.id
        phase = self.phases.pop(0) if len(self.phases) > 1 else self.phases[0]
        return self.op.model_copy(update={"phase": phase})


def running(phase: Phase = Phase.IN_PROGRESS) -> Operation:
    return Operation(id="backup-1", kind="backup", app_id="east.shop.web", phase=phase)


async def cancel(protection: Protection, wait: float = 2.0) -> Operation:
    authz.bind(authz.Principal("alice", authz.Role.MEMBER))  # as the interceptor does
    return await cancel_operation(protection, protection.op, wait)  # type: ignore[arg-type]


async def test_a_cancel_through_canceling_answers_canceled() -> None:
    protection = Protection(running(), [Phase.IN_PROGRESS, Phase.CANCELING, Phase.CANCELED])
    assert (await cancel(protection)).phase == Phase.CANCELED
    assert [c.operation_id for c in protection.sent] == ["backup-1"]
    assert protection.sent[0].requested_by == "alice"


async def test_a_cleanup_still_running_answers_canceling() -> None:
    protection = Protection(running(), [Phase.CANCELING])
    assert (await cancel(protection, wait=0.3)).phase == Phase.CANCELING


async def test_an_operation_found_canceling_is_asked_again_and_waited_for() -> None:
    protection = Protection(running(Phase.CANCELING), [Phase.CANCELING, Phase.CANCELED])
    assert (await cancel(protection)).phase == Phase.CANCELED
    assert len(protection.sent) == 1


async def test_canceled_is_answered_and_an_ended_operation_refused() -> None:
    canceled = Protection(running(Phase.CANCELED), [Phase.CANCELED])
    assert (await cancel(canceled)).phase == Phase.CANCELED and not canceled.sent
    with pytest.raises(ApiError) as ended:
        await cancel(Protection(running(Phase.COMPLETED), [Phase.COMPLETED]))
    assert ended.value.code == grpc.StatusCode.FAILED_PRECONDITION
    finished = Protection(running(), [Phase.IN_PROGRESS, Phase.COMPLETED])
    with pytest.raises(ApiError, match=r"already ended \(Completed\)"):
        await cancel(finished)
