"""ScheduleService: schedules over gRPC.

Schedules are read from KV `schedules` (written by protection, which runs them); creating,
replacing and removing send protection commands. A schedule is checked here with the same
rules protection applies (`vessel.contracts.schedule_rules`), so a bad one is refused at
once with field violations instead of failing later in the service.
"""

from __future__ import annotations

import grpc
from pydantic import ValidationError

from services.gateway.auth import authz
from services.gateway.context import GatewayContext
from services.gateway.errors import ApiError, RpcContext, guard, invalid, not_found
from services.gateway.operations import new_id, operation_id
from services.gateway.reads.lazy_pages import load_page
from services.gateway.v1.protection.convert import schedule_fields, schedule_message
from services.gateway.validation import require_ids
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.contracts import subjects
from vessel.contracts.protection import PutSchedule, RemoveSchedule, ScheduleSpec
from vessel.contracts.schedule_rules import validate_schedule


def parse_schedule(message: ppb.Schedule) -> ScheduleSpec:
    """The schedule, or INVALID_ARGUMENT naming every field at fault (as `schedule.<field>`):
    the contract's field rules first, then the rules protection applies to a schedule."""
    try:
        spec = ScheduleSpec.model_validate(schedule_fields(message))
    except ValidationError as exc:
        raise invalid(
            [("schedule." + ".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        ) from None
    problems = validate_schedule(spec)
    if problems:
        raise invalid(problems)
    return spec


class ScheduleService(prpc.ScheduleServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def _stored(self, schedule_id: str) -> ScheduleSpec | None:
        entry = await self.ctx.schedules.get(schedule_id)
        return None if entry is None else ScheduleSpec.model_validate_json(entry.value)

    async def _existing(self, schedule_id: str) -> ScheduleSpec:
        require_ids(("id", schedule_id, "a schedule id", True))
        spec = await self._stored(schedule_id)
        if spec is None:
            raise not_found(f"schedule {schedule_id}")
        authz.require_scope(authz.current(), authz.app_id_target(spec.app_id))
        return spec

    async def _checked(self, message: ppb.Schedule) -> ScheduleSpec:
        spec = parse_schedule(message)
        await self.ctx.known_bucket("schedule.bucket", spec.bucket)
        await self.ctx.app(spec.app_id)
        return spec

    async def _put(self, spec: ScheduleSpec, op_id: str) -> None:
        await self.ctx.bus.publish(
            subjects.PUT_SCHEDULE,
            PutSchedule(operation_id=op_id, schedule=spec, requested_by=authz.current().name),
        )

    async def _earlier(self, request_id: str) -> ScheduleSpec | None:
        """What a first call with this request id created (a retry answers with it)."""
        if not request_id:
            return None
        value = await self.ctx.requests.remembered("schedule", request_id)
        if value is None:
            return None
        first = ScheduleSpec.model_validate_json(value)
        authz.require_scope(authz.current(), authz.app_id_target(first.app_id))
        return first

    @guard
    async def CreateSchedule(
        self, request: ppb.CreateScheduleRequest, context: RpcContext
    ) -> ppb.Schedule:
        rid = request.request_id
        require_ids(("request_id", rid, "an identifier", False))
        message = ppb.Schedule()
        message.CopyFrom(request.schedule)
        if not message.id:
            message.id = f"schedule-{rid}" if rid else new_id("sch")
        spec = await self._checked(message)
        if (first := await self._earlier(rid)) is not None:
            return schedule_message(first)
        if await self._stored(spec.id) is not None:
            raise ApiError(
                grpc.StatusCode.ALREADY_EXISTS,
                f"schedule {spec.id} exists; UpdateSchedule replaces it",
            )
        value = spec.model_dump_json().encode()
        if rid and not await self.ctx.requests.remember("schedule", rid, value):
            if (first := await self._earlier(rid)) is not None:  # a retry racing the first call
                return schedule_message(first)
        await self._put(spec, operation_id("schedule-put", rid))
        return schedule_message(spec)

    @guard
    async def UpdateSchedule(
        self, request: ppb.UpdateScheduleRequest, context: RpcContext
    ) -> ppb.Schedule:
        current = await self._existing(request.schedule.id)
        spec = await self._checked(request.schedule)
        if spec.app_id != current.app_id:
            raise invalid([("schedule.app_id", f"is {current.app_id}; it cannot change")])
        await self._put(spec, new_id("schedule-put"))
        return schedule_message(spec)

    @guard
    async def GetSchedule(
        self, request: ppb.GetScheduleRequest, context: RpcContext
    ) -> ppb.Schedule:
        return schedule_message(await self._existing(request.id))

    @guard
    async def ListSchedules(
        self, request: ppb.ListSchedulesRequest, context: RpcContext
    ) -> ppb.ListSchedulesResponse:
        principal = authz.current()

        async def load(key: str) -> ppb.Schedule | None:
            spec = await self._stored(key)
            if spec is None or (request.app_id and spec.app_id != request.app_id):
                return None
            if not authz.covers_all(principal, authz.app_id_target(spec.app_id)):
                return None
            return schedule_message(spec)

        items, token = await load_page(
            await self.ctx.schedules.keys(), load, request.page_size, request.page_token
        )
        return ppb.ListSchedulesResponse(schedules=items, next_page_token=token)

    @guard
    async def DeleteSchedule(
        self, request: ppb.DeleteScheduleRequest, context: RpcContext
    ) -> ppb.Schedule:
        spec = await self._existing(request.id)
        await self.ctx.bus.publish(
            subjects.REMOVE_SCHEDULE,
            RemoveSchedule(
                operation_id=new_id("schedule-remove"),
                schedule_id=spec.id,
                requested_by=authz.current().name,
            ),
        )
        return schedule_message(spec)
