"""Where and how the CLI reaches the gateway: endpoint, bearer token, TLS files.

Each setting comes from, in order: a flag, an environment variable, the config file
(`$VESSEL_CLI_CONFIG`, else `$XDG_CONFIG_HOME/vessel/config.yaml`, else
`~/.config/vessel/config.yaml`), a default. The file is YAML:

    endpoint: vessel.example.com:50051
    token: vsl_alice_...
    tls_ca: ca.pem        # relative paths are relative to the file
    tls_cert: alice.pem   # mTLS client certificate and key
    tls_key: alice.key
    otlp_endpoint: http://collector:4317   # export the CLI's spans (OTLP/gRPC)

Every call carries W3C trace context that the gateway continues; the standard TRACEPARENT
environment variable puts the calls in the caller's trace. With an OTLP endpoint (or when
the CLI runs inside a program that traces) each call is an OpenTelemetry CLIENT span;
without one a span would be dropped unseen, so only its context is sent and OpenTelemetry
is not loaded (it costs more to import than the call takes).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import grpc

from vessel_cli.options import DEFAULT_ENDPOINT

SETTINGS = {
    # name: (flag attribute, environment variable)
    "endpoint": ("endpoint", "VESSEL_ENDPOINT"),
    "token": ("token", "VESSEL_TOKEN"),
    "tls": ("tls", "VESSEL_TLS"),
    "tls_ca": ("tls_ca", "VESSEL_TLS_CA"),
    "tls_cert": ("tls_cert", "VESSEL_TLS_CERT"),
    "tls_key": ("tls_key", "VESSEL_TLS_KEY"),
    "otlp_endpoint": ("otlp_endpoint", "VESSEL_OTLP_ENDPOINT"),
}
PATHS = ("tls_ca", "tls_cert", "tls_key")
OTLP_ENDPOINT = re.compile(r"^https?://[^/\s:]+(:[0-9]{1,5})?/?$")
OTEL_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
"""`vessel.telemetry.tracing.OTEL_ENDPOINT_VARIABLES`, repeated so that deciding costs no import."""
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class CliConfigError(Exception):
    pass


@dataclass(frozen=True)
class Connection:
    endpoint: str = DEFAULT_ENDPOINT
    token: str = ""
    tls: bool = False
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    otlp_endpoint: str | None = None
    traceparent: str | None = None
    """W3C trace context the calls continue (TRACEPARENT)."""

    @property
    def secure(self) -> bool:
        return self.tls or any(p is not None for p in (self.tls_ca, self.tls_cert, self.tls_key))


def config_path(environ: Mapping[str, str]) -> Path:
    if environ.get("VESSEL_CLI_CONFIG"):
        return Path(environ["VESSEL_CLI_CONFIG"]).expanduser()
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vessel" / "config.yaml"


def read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    import yaml  # only when there is a file: most calls have none to read

    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CliConfigError(f"{path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise CliConfigError(f"{path}: expected a mapping of settings")
    unknown = sorted(set(doc) - set(SETTINGS))
    if unknown:
        known = ", ".join(SETTINGS)
        raise CliConfigError(f"{path}: unknown setting {', '.join(unknown)} (known: {known})")
    if doc.get("token") and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(f"warning: {path} holds a token and others may read it: chmod 600", file=sys.stderr)
    for key in PATHS:  # relative to the file, like kubeconfig
        if doc.get(key):
            doc[key] = str((path.parent / Path(str(doc[key])).expanduser()).resolve())
    return doc


def _flag(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    return value.strip().lower() in ("1", "true", "yes", "on")


def resolve(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Connection:
    env = os.environ if environ is None else environ
    file = read_file(config_path(env))
    values: dict[str, Any] = {}
    for name, (attr, var) in SETTINGS.items():
        flag = getattr(args, attr, None)
        if flag is not None:
            values[name] = flag
        elif env.get(var):
            values[name] = env[var]
        elif file.get(name) not in (None, ""):
            values[name] = file[name]
    connection = Connection(
        endpoint=str(values.get("endpoint", DEFAULT_ENDPOINT)),
        token=str(values.get("token", "")).strip(),
        tls=_flag(values.get("tls", False)),
        otlp_endpoint=str(values["otlp_endpoint"]) if values.get("otlp_endpoint") else None,
        traceparent=env.get("TRACEPARENT") or None,
        **{k: Path(str(values[k])).expanduser() for k in PATHS if values.get(k)},
    )
    if (connection.tls_cert is None) != (connection.tls_key is None):
        raise CliConfigError("--tls-cert and --tls-key go together (the mTLS client identity)")
    endpoint = connection.otlp_endpoint
    if endpoint is not None and not OTLP_ENDPOINT.match(endpoint):
        raise CliConfigError(
            f"otlp_endpoint {endpoint!r} is not http://host:port or https://host:port"
        )
    return connection


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: Any
    compression: Any


class _Metadata(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Adds the entries `entries()` gives to every call (a bearer token, trace context)."""

    def __init__(self, entries: Callable[[], list[tuple[str, str]]]) -> None:
        self.entries = entries

    def _details(self, d: Any) -> _CallDetails:
        metadata = [*(d.metadata or ()), *self.entries()]
        return _CallDetails(
            d.method, d.timeout, metadata, d.credentials, d.wait_for_ready, d.compression
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)


def trace_context(traceparent: str | None) -> Callable[[], list[tuple[str, str]]]:
    """A `traceparent` entry per call, as an untraced CLIENT span would send it: a new span
    id in the trace `traceparent` names (keeping its sampled flag), else in a new trace."""
    found = TRACEPARENT.match(traceparent.strip().lower()) if traceparent else None
    if found and found[1] != "0" * 32 and found[2] != "0" * 16:
        trace_id, flags = found[1], found[3]
    else:
        trace_id, flags = secrets.token_hex(16), "01"
    return lambda: [("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-{flags}")]


def _spans_wanted(connection: Connection) -> bool:
    """Whether calls become OpenTelemetry spans: when they can be exported, or when the
    program running the CLI traces (its current span is then the calls' parent)."""
    return bool(
        connection.otlp_endpoint
        or any(os.environ.get(name) for name in OTEL_ENDPOINT_VARIABLES)
        or "vessel.telemetry.tracing" in sys.modules
    )


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc


def open_channel(connection: Connection) -> tuple[grpc.Channel, grpc.Channel]:
    """(channel to close, channel to call through). Sets up the CLI's tracing unless the
    program it runs in already did; buffered spans are exported when the process exits."""
    if connection.secure:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(connection.tls_ca, "CA bundle"),
            private_key=_read(connection.tls_key, "client key"),
            certificate_chain=_read(connection.tls_cert, "client certificate"),
        )
        channel = grpc.secure_channel(connection.endpoint, credentials)
    else:
        channel = grpc.insecure_channel(connection.endpoint)
        host = connection.endpoint.rsplit(":", 1)[0].strip("[]")
        if connection.token and host not in ("127.0.0.1", "::1", "localhost"):
            print(
                f"warning: sending the token to {connection.endpoint} without TLS "
                "(use --tls-ca or --tls)",
                file=sys.stderr,
            )
    interceptors: list[Any] = []
    if _spans_wanted(connection):
        from vessel.telemetry import tracing
        from vessel.telemetry.rpc_tracing import ClientTracing

        if not tracing.configured():
            tracing.configure("cli", connection.otlp_endpoint)
        interceptors.append(ClientTracing(connection.traceparent))
    else:
        interceptors.append(_Metadata(trace_context(connection.traceparent)))
    if connection.token:
        bearer = [("authorization", f"Bearer {connection.token}")]
        interceptors.append(_Metadata(lambda: bearer))
    return channel, grpc.intercept_channel(channel, *interceptors)
