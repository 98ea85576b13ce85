"""API tokens: issued by an admin, stored hashed in the gateway-owned KV bucket `tokens`
(its records and store: `services.gateway.state`).

A token reads `vsl_<name>_<secret>`: the name finds the record (one KV key per token), the
secret is 32 random bytes. The record keeps only SHA-256 of the secret. A fast hash is right
here, unlike for passwords: a 256-bit random secret cannot be guessed, so a slow hash
(bcrypt, scrypt) would add nothing but CPU time to every call. Digests are compared in
constant time.

Besides issued tokens, a bootstrap admin token may come from the environment variable named
by `gateway_auth.admin_token_env`. With neither configured and `gateway_auth.required`
false, the gateway is open: every caller is the anonymous admin.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import re
import secrets
from collections.abc import Mapping
from datetime import timedelta

from services.gateway.auth.authz import ANONYMOUS, Principal, Role, unauthenticated
from services.gateway.state import TokenRecord, TokenStore
from vessel.config import ConfigError, VesselSettings
from vessel.contracts import state
from vessel.contracts.operations import now

log = logging.getLogger("vessel.gateway")
PREFIX = "vsl_"
NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
BOOTSTRAP_NAME = "bootstrap-admin"
RESERVED = frozenset({BOOTSTRAP_NAME, ANONYMOUS.name})
MIN_ADMIN_TOKEN = 24


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def issue(
    store: TokenStore,
    name: str,
    role: Role,
    clusters: list[str],
    namespaces: list[str],
    ttl_seconds: int,
    created_by: str,
) -> tuple[TokenRecord, str]:
    """Store a new token; (record, bearer token). KeyExistsError when the name is taken."""
    secret = secrets.token_urlsafe(32)
    created = now()
    record = TokenRecord(
        name=name,
        role=role.label,
        clusters=sorted(set(clusters)),
        namespaces=sorted(set(namespaces)),
        sha256=digest(secret),
        created=created,
        expires=created + timedelta(seconds=ttl_seconds) if ttl_seconds else None,
        created_by=created_by,
    )
    await store.create(record)
    return record, f"{PREFIX}{name}_{secret}"


def principal_of(record: TokenRecord) -> Principal:
    role = Role.parse(record.role)
    if role is None:  # written by a newer gateway with a role this one does not know
        raise unauthenticated(f"token {record.name!r} has unknown role", "INVALID_TOKEN")
    return Principal(record.name, role, frozenset(record.clusters), frozenset(record.namespaces))


def _loopback(listen: str) -> bool:
    host = listen.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Authenticator:
    """Turns the `authorization` metadata into a Principal, or raises UNAUTHENTICATED."""

    def __init__(
        self, settings: VesselSettings, store: TokenStore, environ: Mapping[str, str] | None = None
    ) -> None:
        env = os.environ if environ is None else environ
        auth = settings.gateway_auth
        admin = env.get(auth.admin_token_env, "")
        if admin and len(admin) < MIN_ADMIN_TOKEN:
            raise ConfigError(
                f"${auth.admin_token_env} is shorter than {MIN_ADMIN_TOKEN} characters; use a "
                "random one, e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if not auth.required and not _loopback(settings.gateway_listen):
            raise ConfigError(
                "gateway_auth.required is false but gateway_listen "
                f"{settings.gateway_listen!r} is not a loopback address: set "
                f"${auth.admin_token_env} and issue tokens instead"
            )
        self.store = store
        self.required = auth.required
        self.env_name = auth.admin_token_env
        self._admin = digest(admin) if admin else None

    async def describe(self) -> str:
        """A line for the startup log."""
        tokens = await self.store.any()
        if self._admin is None and not tokens:
            if not self.required:
                return (
                    "AUTHENTICATION IS OFF: gateway is OPEN, every caller acts as an anonymous "
                    f"admin (gateway_auth.required=false); set ${self.env_name} to close it"
                )
            return (
                f"no admin token (${self.env_name}) and no API tokens: every call will be "
                f"refused; set ${self.env_name} to bootstrap"
            )
        admin = f"bootstrap admin token from ${self.env_name}" if self._admin else "no admin token"
        issued = f"issued tokens in KV bucket {state.TOKENS.name!r}"
        return f"bearer tokens required ({admin}; {issued})"

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            if not self.required and self._admin is None and not await self.store.any():
                return ANONYMOUS
            raise unauthenticated(
                "missing bearer token (metadata `authorization: Bearer <token>`)", "MISSING_TOKEN"
            )
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthenticated(
                "authorization metadata is not `Bearer <token>`", "MALFORMED_AUTHORIZATION"
            )
        if self._admin is not None and hmac.compare_digest(digest(token), self._admin):
            return Principal(BOOTSTRAP_NAME, Role.ADMIN)
        unknown = unauthenticated("unknown or revoked token", "INVALID_TOKEN")
        if not token.startswith(PREFIX):
            raise unknown
        name, sep, secret = token[len(PREFIX) :].partition("_")
        if not sep or not NAME.match(name):
            raise unknown
        record = await self.store.get(name)
        if record is None or not hmac.compare_digest(digest(secret), record.sha256):
            raise unknown
        if record.expires is not None and record.expires <= now():
            raise unauthenticated(
                f"token {name!r} expired at {record.expires.isoformat()}", "EXPIRED_TOKEN"
            )
        return principal_of(record)
