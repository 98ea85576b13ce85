"""TLS and mTLS on the gateway, with a CA and certificates made for the test."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import ValidationError

from services.gateway.main import build_gateway
from services.gateway.server import log_security
from tests.gateway.harness import ADMIN_TOKEN, Pki, Running, Starter, bearer, make_settings
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.bus.nats_port import Bus
from vessel.config import ConfigError


async def outcome(channel: grpc.aio.Channel) -> grpc.StatusCode:
    """The status of an authenticated ListApps over `channel`."""
    try:
        await rpc.AppServiceStub(channel).ListApps(
            pb.ListAppsRequest(), metadata=bearer(ADMIN_TOKEN), timeout=10
        )
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def tls(pki: Pki, mtls: bool = False) -> dict[str, str]:
    files = {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)}
    return {**files, "client_ca_file": str(pki.ca)} if mtls else files


async def test_tls_serves_clients_that_trust_its_ca(
    start_gateway: Starter, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tls=tls(pki))
    gw: Running = await start_gateway(settings, pki=pki)
    assert gw.built.tls == "TLS"
    with caplog.at_level(logging.INFO, logger="vessel.gateway"):
        await log_security(gw.built, settings)
    assert "serves TLS" in caplog.text and "PLAINTEXT" not in caplog.text
    assert await outcome(gw.channel()) == grpc.StatusCode.OK
    assert await outcome(gw.channel(cert=(pki.client_cert, pki.client_key))) == grpc.StatusCode.OK
    assert await outcome(gw.channel(secure=False)) == grpc.StatusCode.UNAVAILABLE
    assert await outcome(gw.channel(ca=pki.rogue_ca)) == grpc.StatusCode.UNAVAILABLE


async def test_mtls_rejects_clients_without_a_certificate_from_its_ca(
    start_gateway: Starter, pki: Pki
) -> None:
    gw = await start_gateway(make_settings(tls=tls(pki, mtls=True)), pki=pki)
    assert gw.built.tls == "mTLS"
    assert await outcome(gw.channel()) == grpc.StatusCode.UNAVAILABLE
    assert await outcome(gw.channel(cert=(pki.rogue_cert, pki.rogue_key))) == (
        grpc.StatusCode.UNAVAILABLE
    )
    assert await outcome(gw.channel(secure=False)) == grpc.StatusCode.UNAVAILABLE
    good = gw.channel(cert=(pki.client_cert, pki.client_key))
    assert await outcome(good) == grpc.StatusCode.OK
    # The certificate opens the connection; the token still decides what it may do.
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await rpc.AppServiceStub(good).ListApps(pb.ListAppsRequest(), timeout=10)
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    health = await health_pb2_grpc.HealthStub(good).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_tls_settings_are_complete_or_absent(pki: Pki) -> None:
    with pytest.raises(ValidationError, match="set together"):
        make_settings(tls={"cert_file": str(pki.server_cert)})
    with pytest.raises(ValidationError, match="needs cert_file"):
        make_settings(tls={"client_ca_file": str(pki.ca)})
    assert not make_settings().gateway_tls.enabled


async def test_unreadable_tls_files_name_the_setting(bus: Bus, pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    for field, broken in (
        ("cert_file", {"cert_file": str(missing), "key_file": str(pki.server_key)}),
        ("key_file", {"cert_file": str(pki.server_cert), "key_file": str(missing)}),
        ("client_ca_file", {**tls(pki), "client_ca_file": str(missing)}),
    ):
        with pytest.raises(ConfigError) as error:
            await build_gateway(make_settings(tls=broken), bus, environ={})
        assert f"gateway_tls.{field}" in str(error.value) and str(missing) in str(error.value)
