"""Trace context across gRPC: a SERVER span per RPC on the gateway, a CLIENT span per call in
the CLI, joined by the W3C `traceparent` metadata entry. The gateway's interceptor also
counts and times each RPC (`grpc_server_*`, as go-grpc-prometheus names them).

The server span is current while the servicer runs, so the commands it publishes (PRODUCER
spans on the bus) and the log lines it writes belong to the caller's trace.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

import grpc
from opentelemetry.trace import Span, SpanKind

from vessel.telemetry import metrics, tracing

UNTRACED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
"""Probes and tooling: a span per health check would bury the traces that matter."""
SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
"""Codes that are the server's fault (OpenTelemetry RPC conventions); others are the
caller's and leave a SERVER span's status unset."""


def rpc_attributes(full_method: str) -> dict[str, Any]:
    """`rpc.*` attributes of `/package.Service/Method`."""
    service, _, method = full_method.strip("/").rpartition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}


def span_name(full_method: str) -> str:
    return full_method.strip("/")


def _finish(span: Span, code: grpc.StatusCode, details: str | None, *, server: bool) -> None:
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code != grpc.StatusCode.OK and (not server or code in SERVER_ERRORS):
        tracing.fail(span, f"{code.name}: {details}" if details else code.name)


def _record(span: Span, exc: BaseException) -> None:
    """An exception the servicer did not turn into a status (an abort already is one)."""
    if not isinstance(exc, grpc.aio.AbortError):
        span.record_exception(exc)


def _server_code(context: grpc.aio.ServicerContext, failed: bool) -> grpc.StatusCode:
    """The call's code: what the servicer set or aborted with; none set means OK, or UNKNOWN
    when an exception escaped (what gRPC answers then)."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    return grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK


class ServerTracing(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """First in the gateway's interceptor list, so refused calls are traced too."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        full: str = details.method
        if handler is None or full.startswith(UNTRACED_PREFIXES):
            return handler
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                counted = _Counted(full, "unary")
                with _server_span(full, context) as span:
                    try:
                        reply = await inner(request, context)
                    except BaseException as exc:
                        _record(span, exc)
                        code = _server_code(context, True)
                        _finish(span, code, context.details(), server=True)
                        counted.done(code)
                        raise
                    code = _server_code(context, False)
                    _finish(span, code, context.details(), server=True)
                    counted.done(code)
                    return reply

            return grpc.unary_unary_rpc_method_handler(
                unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                counted = _Counted(full, "server_stream")
                with _server_span(full, context) as span:
                    try:
                        async for item in inner_stream(request, context):
                            yield item
                    except BaseException as exc:
                        _record(span, exc)
                        code = _server_code(context, True)
                        _finish(span, code, context.details(), server=True)
                        counted.done(code)
                        raise
                    code = _server_code(context, False)
                    _finish(span, code, context.details(), server=True)
                    counted.done(code)

            return grpc.unary_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )
        return handler  # client streaming: the API has none


def go_code(code: grpc.StatusCode) -> str:
    """The code as gRPC-Go spells it (`PermissionDenied`), which dashboards and alerts
    written for go-grpc-prometheus match."""
    special = {grpc.StatusCode.OK: "OK", grpc.StatusCode.CANCELLED: "Canceled"}
    return special.get(code) or "".join(w.capitalize() for w in code.name.split("_"))


class _Counted:
    """One RPC in the `grpc_server_*` metrics: started now, handled at `done`."""

    def __init__(self, full: str, kind: str) -> None:
        service, _, method = full.strip("/").rpartition("/")
        self.labels = (kind, service, method)
        self.started = time.monotonic()
        metrics.RPC_STARTED.labels(*self.labels).inc()

    def done(self, code: grpc.StatusCode) -> None:
        metrics.RPC_HANDLED.labels(*self.labels, go_code(code)).inc()
        metrics.RPC_SECONDS.labels(*self.labels).observe(time.monotonic() - self.started)


def _server_span(full: str, context: grpc.aio.ServicerContext) -> AbstractContextManager[Span]:
    metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
    return tracing.span(
        span_name(full),
        rpc_attributes(full),
        kind=SpanKind.SERVER,
        context=tracing.extract(metadata),
        errors=False,
    )


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: Any
    compression: Any


class ClientTracing(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """A CLIENT span per call, its context sent as `traceparent` metadata. The span
    continues the current trace, else the one `traceparent` names (the CLI passes the
    standard TRACEPARENT environment variable, so a script can put it in its own trace)."""

    def __init__(self, traceparent: str | None = None) -> None:
        self.traceparent = traceparent

    def _start(self, details: Any) -> tuple[Span, _CallDetails]:
        full = str(details.method)
        span = tracing.tracer().start_span(
            span_name(full),
            context=tracing.continuing(self.traceparent),
            kind=SpanKind.CLIENT,
            attributes=rpc_attributes(full),
        )
        carrier: dict[str, str] = {}
        tracing.inject(carrier, tracing.context_of(span))
        metadata = [*(details.metadata or ()), *carrier.items()]
        return span, _CallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            details.wait_for_ready,
            details.compression,
        )

    def _call(self, continuation: Any, details: Any, request: Any) -> Any:
        span, traced = self._start(details)
        try:
            call = continuation(traced, request)
        except BaseException as exc:
            span.record_exception(exc)
            tracing.fail(span, str(exc))
            span.end()
            raise

        def done(finished: Any) -> None:
            _finish(span, finished.code(), finished.details(), server=False)
            span.end()

        call.add_done_callback(done)
        return call

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return self._call(continuation, details, request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return self._call(continuation, details, request)
