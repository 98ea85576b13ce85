"""OpenTelemetry tracing for every Vessel process: one tracer provider, W3C trace context.

A request crosses the CLI, the gateway, NATS and several services; one trace id ties their
spans together. Spans are always created, so trace context travels with every message and
every log line carries it, but they leave the process only when an OTLP endpoint is
configured (`otlp_endpoint` / `VESSEL_OTLP_ENDPOINT`, or the standard
`OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`). Without one the provider has no span processor:
a span costs a few allocations and is dropped when it ends.

The bus and the gRPC interceptors (`vessel.telemetry.rpc_tracing`) are the only places that create
transport spans; `span` is for work worth timing inside a handler (a volume transfer).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Literal

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

INSTRUMENTATION = "vessel"
OTEL_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
"""The standard variables, honoured when Vessel's own setting is unset."""
FLUSH_MILLIS = 5000

_propagator = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None
_exporting = False
_configured = False
Attributes = Mapping[str, AttributeValue]


def configure(
    service: str,
    endpoint: str | None = None,
    *,
    cluster: str | None = None,
) -> TracerProvider:
    """Make this process's spans belong to `vessel-<service>` (of `cluster`, for agents),
    exported to `endpoint` (else to the one the standard OTEL variables name) when there
    is one. Replaces, flushing it, any provider configured before."""
    global _provider, _exporting, _configured
    attributes: dict[str, AttributeValue] = {SERVICE_NAME: f"vessel-{service}"}
    if cluster:
        attributes["vessel.cluster"] = cluster
    provider = TracerProvider(resource=Resource.create(attributes))
    exporter = None
    if endpoint or any(os.environ.get(name) for name in OTEL_ENDPOINT_VARIABLES):
        # Imported only when spans are exported: it costs every process ~0.1 s CPU at start.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        # Without `endpoint` it reads the variables with their headers and TLS companions.
        exporter = OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    previous, _provider, _exporting = _provider, provider, exporter is not None
    _configured = True
    if previous is not None:
        previous.shutdown()
    return provider


def configured() -> bool:
    """Whether `configure` chose this process's provider (a CLI embedded in a program that
    configured tracing keeps that program's)."""
    return _configured


def exporting() -> bool:
    """Whether this process's spans leave it (an OTLP endpoint is configured)."""
    return _exporting


def flush(timeout_millis: int = FLUSH_MILLIS) -> bool:
    """Export what is buffered now; False when it did not finish in time."""
    return _provider is None or _provider.force_flush(timeout_millis)


def shutdown() -> None:
    """Export what is buffered, then stop: the last thing a process does."""
    global _provider, _exporting, _configured
    if _provider is not None:
        _provider.force_flush(FLUSH_MILLIS)
        _provider.shutdown()
    _provider, _exporting, _configured = None, False, False


def tracer() -> trace.Tracer:
    """The tracer of the configured provider; before `configure`, one that exports nothing
    (library use and tests still propagate trace context)."""
    global _provider
    if _provider is None:
        _provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "vessel"}))
    return _provider.get_tracer(INSTRUMENTATION)


def inject(carrier: MutableMapping[str, str], context: Context | None = None) -> None:
    """Write `traceparent` (and `tracestate`) of `context` (default: the current one)."""
    _propagator.inject(carrier, context=context)


def extract(carrier: Mapping[str, str]) -> Context:
    """The context a `traceparent` in `carrier` names; an empty one when it names none."""
    return _propagator.extract(carrier)


def traceparent() -> str | None:
    """The W3C traceparent of the current span; None outside any trace."""
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent")


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span as hex, for log lines; None outside a trace."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return trace.format_trace_id(ctx.trace_id), trace.format_span_id(ctx.span_id)


@contextlib.contextmanager
def span(
    name: str,
    attributes: Attributes | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    context: Context | None = None,
    errors: bool = True,
) -> Iterator[Span]:
    """A span current for the block (child of `context`, default the current one); an
    exception escaping it is recorded as an error unless `errors` is False (the caller
    sets the status: an aborted RPC may be the caller's fault, not the server's)."""
    with tracer().start_as_current_span(
        name,
        context=context,
        kind=kind,
        attributes=attributes,
        record_exception=errors,
        set_status_on_exception=errors,
    ) as current:
        yield current


def fail(current: Span, reason: str) -> None:
    """Mark `current` failed without an exception (a nak, a recorded transfer error)."""
    current.set_status(Status(StatusCode.ERROR, reason))


def messaging(
    subject: str, operation: Literal["publish", "process"], message_id: str | None
) -> dict[str, AttributeValue]:
    """The OpenTelemetry messaging attributes of one NATS message."""
    attributes: dict[str, AttributeValue] = {
        "messaging.system": "nats",
        "messaging.destination.name": subject,
        "messaging.operation.name": operation,
        "messaging.operation.type": "send" if operation == "publish" else "process",
    }
    if message_id:
        attributes["messaging.message.id"] = message_id
    return attributes


def continuing(traceparent: str | None) -> Context | None:
    """The context a new span starts in: the current one inside a trace (None), else the
    one `traceparent` names (a message or request that arrived with it)."""
    if trace.get_current_span().get_span_context().is_valid or not traceparent:
        return None
    return extract({"traceparent": traceparent})


def context_of(current: Span) -> Context:
    """A context in which `current` is the active span (to inject a span not made current)."""
    return trace.set_span_in_context(current)
