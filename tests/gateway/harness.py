"""Gateway test support: a test PKI, settings, a running in-process gateway, tokens."""

from __future__ import annotations

import ipaddress
import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.gateway.server import GatewayServer
from vessel.api.v1 import tokens_pb2 as tpb
from vessel.api.v1 import tokens_pb2_grpc as trpc
from vessel.bus.nats_port import Bus
from vessel.config import VesselSettings
from vessel.contracts.events import AppRecord

ADMIN_ENV = "VESSEL_TEST_GATEWAY_ADMIN_TOKEN"
ADMIN_TOKEN = "boot-" + secrets.token_urlsafe(24)


def bearer(token: str | None) -> list[tuple[str, str]] | None:
    return [("authorization", f"Bearer {token}")] if token else None


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_ca: Path
    rogue_cert: Path
    rogue_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], cn: str, server: bool
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca[1].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return key, builder.sign(ca[0], hashes.SHA256())


def _write(directory: Path, stem: str, key: Any, cert: x509.Certificate) -> tuple[Path, Path]:
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def make_pki(directory: Path) -> Pki:
    ca, rogue = _ca("vessel test ca"), _ca("rogue ca")
    ca_path, _ = _write(directory, "ca", *ca)
    rogue_ca_path, _ = _write(directory, "rogue-ca", *rogue)
    server_cert, server_key = _write(directory, "server", *_leaf(ca, "gateway", server=True))
    client_cert, client_key = _write(directory, "client", *_leaf(ca, "alice", server=False))
    rogue_cert, rogue_key = _write(directory, "rogue", *_leaf(rogue, "mallory", server=False))
    return Pki(
        ca_path,
        server_cert,
        server_key,
        client_cert,
        client_key,
        rogue_ca_path,
        rogue_cert,
        rogue_key,
    )


def make_settings(
    *,
    tls: dict[str, str] | None = None,
    required: bool = True,
    listen: str = "127.0.0.1:0",
    clusters: Sequence[str] = (),
    buckets: list[dict[str, Any]] | None = None,
) -> VesselSettings:
    return VesselSettings(
        gateway_listen=listen,
        gateway_tls=tls or {},
        gateway_auth={"required": required, "admin_token_env": ADMIN_ENV},
        clusters=[{"id": c, "kubeconfig": "/nonexistent/kubeconfig"} for c in clusters],
        buckets=buckets or [],
    )


@dataclass
class Running:
    built: GatewayServer
    tls: Pki | None = None
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.built.port}"

    def channel(
        self,
        *,
        secure: bool | None = None,
        ca: Path | None = None,
        cert: tuple[Path, Path] | None = None,
    ) -> grpc.aio.Channel:
        """A client channel: TLS when the gateway serves it (unless `secure` says otherwise),
        trusting `ca` (default the test CA), presenting `cert` (cert, key) when given."""
        use_tls = (self.tls is not None) if secure is None else secure
        if use_tls:
            trusted = ca or (self.tls.ca if self.tls else None)
            assert trusted is not None, "TLS needs a CA to trust"
            root = trusted.read_bytes()
            creds = grpc.ssl_channel_credentials(
                root_certificates=root,
                private_key=cert[1].read_bytes() if cert else None,
                certificate_chain=cert[0].read_bytes() if cert else None,
            )
            channel = grpc.aio.secure_channel(self.endpoint, creds)
        else:
            channel = grpc.aio.insecure_channel(self.endpoint)
        self.channels.append(channel)
        return channel

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()
        await self.built.stop(None)


Starter = Callable[..., Awaitable[Running]]


async def purge_tokens(bus: Bus) -> None:
    """Tests of open mode need a `tokens` bucket without tokens."""
    kv = await bus.kv("tokens")
    for key in await kv.keys():
        await kv.delete(key)


async def issue(
    channel: grpc.aio.Channel,
    admin: str,
    role: str,
    clusters: Sequence[str] = (),
    namespaces: Sequence[str] = (),
    name: str | None = None,
    ttl: int = 0,
) -> tuple[str, str]:
    """(name, secret) of a new token, issued with `admin`."""
    name = name or unique(role)
    reply = await trpc.TokenServiceStub(channel).CreateToken(
        tpb.CreateTokenRequest(
            name=name,
            role=role,
            clusters=list(clusters),
            namespaces=list(namespaces),
            ttl_seconds=ttl,
        ),
        metadata=bearer(admin),
    )
    return name, reply.secret


def app_record(cluster: str, namespace: str, name: str, **extra: Any) -> AppRecord:
    """An available app grouped by the label `app=<name>`, as discovery records it."""
    return AppRecord(
        cluster=cluster,
        namespace=namespace,
        name=name,
        grouping="label",
        selector={"app": name},
        state="Available",
        **extra,
    )
