"""Trace context across gRPC: the client interceptor's CLIENT span is the parent of the
server interceptor's SERVER span (real gRPC over loopback, spans through a real OTLP
collector), with rpc.* attributes and the status rules of the RPC conventions."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from prometheus_client import REGISTRY

from tests.telemetry.collector import Collector, Received
from vessel.telemetry import tracing
from vessel.telemetry.rpc_tracing import ClientTracing, ServerTracing
from vessel_cli.connection import CliConfigError, resolve

pytestmark = pytest.mark.timeout(60)
SERVICE = "test.Echo"
seen_in_handler: list[tuple[str, str] | None] = []


async def say(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    seen_in_handler.append(tracing.current_ids())
    return b"said:" + request


async def refuse(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not yours")
    raise AssertionError("abort returns no value")


async def crash(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise RuntimeError("disk on fire")


async def count(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    for i in range(3):
        seen_in_handler.append(tracing.current_ids())
        yield str(i).encode()


@pytest.fixture
async def server() -> AsyncIterator[str]:
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(fn)
        for name, fn in (("Say", say), ("Refuse", refuse), ("Crash", crash))
    }
    handlers["Count"] = grpc.unary_stream_rpc_method_handler(count)
    srv = grpc.aio.server(interceptors=[ServerTracing()])
    srv.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
    port = srv.add_insecure_port("127.0.0.1:0")
    await srv.start()
    yield f"127.0.0.1:{port}"
    await srv.stop(None)


async def call(address: str, method: str, traceparent: str | None = None) -> Any:
    def blocking() -> Any:
        with grpc.insecure_channel(address) as channel:
            traced = grpc.intercept_channel(channel, ClientTracing(traceparent))
            stub = traced.unary_unary(f"/{SERVICE}/{method}")
            try:
                return stub(b"hi", timeout=10)
            except grpc.RpcError as exc:
                return exc.code()

    return await asyncio.to_thread(blocking)


def pair(spans: list[Received], method: str) -> tuple[Received, Received]:
    client = [s for s in spans if s.kind == "CLIENT" and s.name == f"{SERVICE}/{method}"]
    server = [s for s in spans if s.kind == "SERVER" and s.name == f"{SERVICE}/{method}"]
    assert len(client) == len(server) == 1, [(s.kind, s.name) for s in spans]
    return client[0], server[0]


async def test_client_span_is_parent_of_server_span(exported: Collector, server: str) -> None:
    seen_in_handler.clear()
    assert await call(server, "Say") == b"said:hi"
    assert tracing.flush()
    client, srv = pair(exported.spans(), "Say")
    assert srv.trace_id == client.trace_id and srv.parent_id == client.span_id
    assert client.parent_id == ""
    assert srv.attributes == {
        "rpc.system": "grpc",
        "rpc.service": SERVICE,
        "rpc.method": "Say",
        "rpc.grpc.status_code": 0,
    }
    assert client.attributes["rpc.grpc.status_code"] == 0
    assert not srv.error and not client.error
    assert seen_in_handler == [(srv.trace_id, srv.span_id)]


async def test_a_given_traceparent_is_continued(exported: Collector, server: str) -> None:
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    assert await call(server, "Say", f"00-{trace_id}-{parent}-01") == b"said:hi"
    assert tracing.flush()
    client, srv = pair(exported.spans(), "Say")
    assert client.trace_id == srv.trace_id == trace_id
    assert client.parent_id == parent


async def test_status_caller_fault_vs_server_fault(exported: Collector, server: str) -> None:
    assert await call(server, "Refuse") == grpc.StatusCode.PERMISSION_DENIED
    assert await call(server, "Crash") == grpc.StatusCode.UNKNOWN
    assert tracing.flush()
    spans = exported.spans()
    client, srv = pair(spans, "Refuse")
    assert srv.attributes["rpc.grpc.status_code"] == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert not srv.error  # the caller's fault: the server did its job
    assert client.error and "PERMISSION_DENIED" in client.status_message
    client, srv = pair(spans, "Crash")
    assert srv.attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNKNOWN.value[0]
    assert srv.error and client.error


async def test_a_streamed_reply_is_one_span_on_each_side(exported: Collector, server: str) -> None:
    seen_in_handler.clear()

    def blocking() -> list[bytes]:
        with grpc.insecure_channel(server) as channel:
            traced = grpc.intercept_channel(channel, ClientTracing())
            return list(traced.unary_stream(f"/{SERVICE}/Count")(b"", timeout=10))

    assert await asyncio.to_thread(blocking) == [b"0", b"1", b"2"]
    assert tracing.flush()
    client, srv = pair(exported.spans(), "Count")
    assert srv.parent_id == client.span_id
    assert srv.attributes["rpc.grpc.status_code"] == 0 == client.attributes["rpc.grpc.status_code"]
    assert seen_in_handler == [(srv.trace_id, srv.span_id)] * 3


def test_cli_reads_traceparent_and_endpoint() -> None:
    environ = {
        "TRACEPARENT": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "VESSEL_OTLP_ENDPOINT": "http://127.0.0.1:4317",
        "VESSEL_CLI_CONFIG": "/nonexistent/vessel-cli.yaml",
    }
    connection = resolve(argparse.Namespace(), environ)
    assert connection.traceparent == environ["TRACEPARENT"]
    assert connection.otlp_endpoint == "http://127.0.0.1:4317"
    with pytest.raises(CliConfigError, match="otlp_endpoint 'collector:4317'"):
        resolve(argparse.Namespace(), {**environ, "VESSEL_OTLP_ENDPOINT": "collector:4317"})


async def test_every_rpc_is_counted_and_timed_by_method_and_code(server: str) -> None:
    def value(name: str, method: str, **labels: str) -> float:
        found = REGISTRY.get_sample_value(
            name, {"grpc_service": SERVICE, "grpc_method": method, **labels}
        )
        return found or 0.0

    unary = {"grpc_type": "unary"}
    before = {
        "ok": value("grpc_server_handled_total", "Say", grpc_code="OK", **unary),
        "denied": value(
            "grpc_server_handled_total", "Refuse", grpc_code="PermissionDenied", **unary
        ),
        "crashed": value("grpc_server_handled_total", "Crash", grpc_code="Unknown", **unary),
        "timed": value("grpc_server_handling_seconds_count", "Say", **unary),
        "started": value("grpc_server_started_total", "Say", **unary),
    }
    assert await call(server, "Say") == b"said:hi"
    assert await call(server, "Say") == b"said:hi"
    assert await call(server, "Refuse") == grpc.StatusCode.PERMISSION_DENIED
    assert await call(server, "Crash") == grpc.StatusCode.UNKNOWN
    assert value("grpc_server_handled_total", "Say", grpc_code="OK", **unary) == before["ok"] + 2
    assert value("grpc_server_started_total", "Say", **unary) == before["started"] + 2
    assert value("grpc_server_handling_seconds_count", "Say", **unary) == before["timed"] + 2
    denied = value("grpc_server_handled_total", "Refuse", grpc_code="PermissionDenied", **unary)
    assert denied == before["denied"] + 1
    crashed = value("grpc_server_handled_total", "Crash", grpc_code="Unknown", **unary)
    assert crashed == before["crashed"] + 1
