"""The gateway's gRPC server: TLS, the interceptors (tracing, then the access policy),
health and reflection, bound to `gateway_listen`. Which services it serves is the inbox's
table (main adds them)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.gateway.auth import policy
from services.gateway.auth.tokens import Authenticator
from vessel.config import ConfigError, GatewayTLSConfig, VesselSettings
from vessel.telemetry.rpc_tracing import ServerTracing

log = logging.getLogger("vessel.gateway")


def _read(field: str, path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"gateway_tls.{field}: cannot read {path}: {exc.strerror}") from exc


def server_credentials(tls: GatewayTLSConfig) -> grpc.ServerCredentials | None:
    """TLS credentials, requiring client certificates when a client CA is set; None: no TLS."""
    if not tls.enabled:
        return None
    cert, key = _read("cert_file", tls.cert_file), _read("key_file", tls.key_file)
    client_ca = _read("client_ca_file", tls.client_ca_file)
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


@dataclass
class GatewayServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    authenticator: Authenticator
    tls: str
    """"off", "TLS" or "mTLS"."""

    async def start(self) -> None:
        await self.server.start()
        for name in ["", *service_names()]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float | None = 2) -> None:
        await self.server.stop(grace)


def service_names() -> list[str]:
    return [s.full_name for f in policy.FILES for s in f.services_by_name.values()]


def build_server(settings: VesselSettings, authenticator: Authenticator) -> GatewayServer:
    """The server, bound to `gateway_listen` (port 0: any free port), serving health and
    reflection but no API service yet, not started. Raises ConfigError for unusable TLS
    settings or an address it cannot listen on."""
    credentials = server_credentials(settings.gateway_tls)
    # Tracing first: calls the policy refuses are traced as well.
    server = grpc.aio.server(interceptors=[ServerTracing(), policy.AuthInterceptor(authenticator)])
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*service_names(), health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    address = settings.gateway_listen
    if credentials is None:
        port = server.add_insecure_port(address)
        mode = "off"
    else:
        port = server.add_secure_port(address, credentials)
        mode = "mTLS" if settings.gateway_tls.client_ca_file else "TLS"
    if port == 0:
        raise ConfigError(f"gateway cannot listen on {address}")
    return GatewayServer(server, port, health_servicer, authenticator, mode)


async def log_security(built: GatewayServer, settings: VesselSettings) -> None:
    if built.tls == "off":
        log.warning(
            "gateway serves PLAINTEXT gRPC on %s: bearer tokens cross the network unencrypted; "
            "set gateway_tls.cert_file and gateway_tls.key_file",
            settings.gateway_listen,
        )
    else:
        log.info("gateway serves %s on %s", built.tls, settings.gateway_listen)
    line = await built.authenticator.describe()
    if line.startswith(("AUTHENTICATION IS OFF", "no admin token")):
        log.warning("%s", line)
    else:
        log.info("%s", line)
