"""The gateway's questions to a cluster's provisioner (core NATS request/reply), and the
wait for a provisioner's answer to a backend command (its added/updated/removed or
rejected event). Clones and migrations ask too (the target's StorageClasses).

A provisioner that does not answer in time is UNAVAILABLE naming the cluster: the gateway
never falls back to reading backends itself.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TypeVar

import grpc
from pydantic import ValidationError

from services.gateway.errors import ApiError
from vessel.bus.errors import BusError
from vessel.bus.nats_port import Bus
from vessel.contracts.envelope import CloudEvent
from vessel.contracts.events import QueryFailed
from vessel.contracts.models import Payload

R = TypeVar("R", bound=Payload)
BACKEND_EVENTS = "vessel.evt.provisioner.*.backend.>"
QUERY_SECONDS = 5.0


def unavailable(cluster: str, why: str) -> ApiError:
    return ApiError(
        grpc.StatusCode.UNAVAILABLE,
        f"the provisioner of cluster {cluster} {why}",
        reason="PROVISIONER_UNAVAILABLE",
        metadata={"cluster": cluster},
    )


async def ask(
    bus: Bus,
    cluster: str,
    subject: str,
    request: Payload,
    reply: type[R],
    wait: float = QUERY_SECONDS,
) -> R:
    """Ask the provisioner of `cluster` on `subject` (a template with `{cluster}`)."""
    try:
        body = await bus.request(
            subject.format(cluster=cluster), request.model_dump_json().encode(), wait=wait
        )
    except BusError:
        raise unavailable(cluster, "is not running (nobody answers)") from None
    except TimeoutError:
        raise unavailable(cluster, f"did not answer within {wait:g}s") from None
    answer = decoded(body, reply, f"the provisioner of cluster {cluster}")
    if isinstance(answer, QueryFailed):
        raise ApiError(grpc.StatusCode.INTERNAL, f"cluster {cluster}: {answer.error}")
    return answer


def decoded(body: bytes, reply: type[R], who: str) -> R | QueryFailed:
    """A query's answer: the reply, or the `QueryFailed` `who` sent instead; INTERNAL when
    it is neither."""
    try:
        return reply.model_validate_json(body)
    except ValidationError:
        try:
            return QueryFailed.model_validate_json(body)
        except ValidationError:
            raise ApiError(grpc.StatusCode.INTERNAL, f"{who} sent an unreadable answer") from None


async def outcome(
    bus: Bus, cluster: str, operation_id: str, since: datetime, wait: float
) -> CloudEvent:
    """The provisioner's event answering backend command `operation_id`."""

    async def find() -> CloudEvent:
        async for _, event in bus.tail(BACKEND_EVENTS, since=since):
            data = event.data
            if data.get("operation_id") == operation_id and data.get("cluster") == cluster:
                return event
        raise unavailable(cluster, "stopped the event stream")  # pragma: no cover

    try:
        return await asyncio.wait_for(find(), wait)
    except TimeoutError:
        raise unavailable(
            cluster, f"did not apply backend command {operation_id} within {wait:g}s"
        ) from None
