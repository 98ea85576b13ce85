"""gRPC errors with google.rpc details, raised as exceptions and mapped once in `guard`
(every unary servicer method wears it). A bus that does not answer is UNAVAILABLE with a
readable message, never UNKNOWN."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeAlias, TypeVar

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from vessel.bus.errors import BusError

T = TypeVar("T")
RpcContext: TypeAlias = grpc.aio.ServicerContext
"""A call's gRPC context (not the gateway's shared `GatewayContext`)."""

DOMAIN = "vessel.io"


class ApiError(Exception):
    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        violations: list[tuple[str, str]] | None = None,
        reason: str = "",
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.violations = violations or []
        self.reason, self.metadata = reason, metadata or {}

    def status(self) -> grpc.Status:
        proto = status_pb2.Status(code=getattr(code_pb2, self.code.name), message=str(self))
        if self.violations:
            detail = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                    for f, d in self.violations
                ]
            )
            proto.details.add().Pack(detail)
        if self.reason:
            info = error_details_pb2.ErrorInfo(
                reason=self.reason, domain=DOMAIN, metadata=self.metadata
            )
            proto.details.add().Pack(info)
        return rpc_status.to_status(proto)


def invalid(violations: list[tuple[str, str]]) -> ApiError:
    text = "; ".join(f"{f}: {d}" for f, d in violations)
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, f"invalid request: {text}", violations)


def unavailable(why: str) -> ApiError:
    return ApiError(
        grpc.StatusCode.UNAVAILABLE, f"Vessel is unavailable: {why}; retry later", reason="BUS"
    )


def not_found(what: str) -> ApiError:
    return ApiError(grpc.StatusCode.NOT_FOUND, f"{what} not found")


def guard(
    fn: Callable[[Any, Any, RpcContext], Awaitable[T]],
) -> Callable[[Any, Any, RpcContext], Awaitable[T]]:
    @wraps(fn)
    async def wrapper(self: Any, request: Any, context: RpcContext) -> T:
        try:
            return await fn(self, request, context)
        except ApiError as exc:
            await context.abort_with_status(exc.status())
            raise  # abort raises; this satisfies the type checker
        except (TimeoutError, BusError) as exc:
            # The bus did not answer (NATS down or restarting): the call may succeed
            # later, which UNAVAILABLE tells every gRPC client, and retry policies act on.
            error = unavailable(f"the message bus did not answer ({exc or type(exc).__name__})")
            await context.abort_with_status(error.status())
            raise

    return wrapper
