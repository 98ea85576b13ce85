"""Clusters that join by token (docs/design/0007-hub-and-agents.md, "Joining at run time").

`vessel cluster join-token NAME` has the hub's discovery make a random token, kept only
as its digest with an expiry (KV `cluster-joins`). The cluster's leaf NATS dials the hub
as user NAME with the token as password; nats-server, which knows no such user, asks
discovery (its authorization callout), and discovery admits the connection with the
permissions of that cluster's leaf (`permissions.leaf_node`): nothing of another cluster.
The first admission must come before the expiry and makes the token the cluster's leaf
credential from then on; `cluster remove` forgets it and cuts the leaf connection through
the hub's system account, so the cluster can neither stay nor come back without a new
token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, TypeAdapter, ValidationError

from services.discovery.state import read_one
from vessel.bus import nats_auth
from vessel.bus.nats_port import KeyValue
from vessel.config import VesselSettings
from vessel.contracts import permissions
from vessel.contracts.events import JoinToken, JoinTokenRequest
from vessel.contracts.models import ClusterId

log = logging.getLogger("vessel.discovery")


class JoinError(Exception):
    """A join token that cannot be issued (the message says why)."""


class JoinRecord(BaseModel):
    cluster: ClusterId
    token_sha256: str
    issued_at: datetime
    expires_at: datetime
    joined_at: datetime | None = None
    server_id: str | None = None
    """The hub's NATS server that admitted the cluster's leaf connection last."""
    connection: int | None = None
    """That connection's id on that server (to cut it on removal)."""


CLUSTER_NAME = TypeAdapter(ClusterId)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class Joins:
    """Issues join tokens, admits or refuses leaf connections, and revokes."""

    def __init__(
        self,
        kv: KeyValue,
        settings: VesselSettings,
        known: Callable[[str], Awaitable[bool]],
        clock: Callable[[], datetime] = _now,
    ) -> None:
        """`known(cluster)`: whether discovery already knows a cluster of that name."""
        self.kv, self.settings, self.known, self.clock = kv, settings, known, clock
        seed = settings.nats_callout_seed
        self.seed = seed.get_secret_value() if seed is not None else None
        if self.seed is not None:
            try:
                nats_auth.issuer_of(self.seed)
            except ValueError as exc:
                raise ValueError(f"nats_callout_seed: {exc}") from None

    async def get(self, cluster: str) -> JoinRecord | None:
        return await read_one(self.kv, cluster, JoinRecord)

    async def _put(self, record: JoinRecord) -> None:
        await self.kv.put(record.cluster, record.model_dump_json().encode())

    async def issue(self, request: JoinTokenRequest) -> JoinToken:
        if self.seed is None:
            raise JoinError(
                "this hub admits no cluster by token: its discovery has no nats_callout_seed "
                "(and its NATS no auth_callout)"
            )
        record = await self.get(request.cluster)
        if (record is not None and record.joined_at is not None) or (
            record is None and await self.known(request.cluster)
        ):
            raise JoinError(
                f"cluster {request.cluster} is already registered; remove it first to join it again"
            )
        token, now = secrets.token_urlsafe(32), self.clock()
        expires = now + timedelta(seconds=request.ttl_seconds)
        record = JoinRecord(
            cluster=request.cluster, token_sha256=_digest(token), issued_at=now, expires_at=expires
        )
        await self._put(record)
        log.info("join token for cluster %s issued, to be used by %s", request.cluster, expires)
        return JoinToken(cluster=request.cluster, token=token, expires_at=expires)

    async def authorize(self, subject: str, body: bytes) -> bytes:
        """nats-server's question about a connection no configured user matches, and the
        signed answer (a handler of the callout subject)."""
        assert self.seed is not None
        request = nats_auth.CalloutRequest.parse(body)
        problem = await self._problem(request)
        if problem:
            log.warning("NATS connection as %r refused: %s", request.user, problem)
            return nats_auth.refuse(request, self.seed, problem)
        leaf = permissions.leaf_node(request.user)
        return nats_auth.admit(
            request,
            self.seed,
            account=permissions.ACCOUNT,
            name=request.user,
            publish=leaf.publish,
            subscribe=leaf.subscribe,
        )

    async def _problem(self, request: nats_auth.CalloutRequest) -> str:
        """Why `request` is refused; empty when it is admitted (and recorded)."""
        if request.kind != "Leafnode":
            return "only a cluster's leaf node joins by token"
        try:
            CLUSTER_NAME.validate_python(request.user)
        except ValidationError:
            return f"{request.user!r} is not a cluster name (DNS label)"
        record = await self.get(request.user)
        if record is None or not hmac.compare_digest(
            record.token_sha256, _digest(request.password)
        ):
            return f"no cluster {request.user!r} joins with this token"
        now = self.clock()
        if record.joined_at is None and now >= record.expires_at:
            return f"the join token of cluster {record.cluster} expired at {record.expires_at}"
        first = record.joined_at is None
        record = record.model_copy(
            update={
                "joined_at": record.joined_at or now,
                "server_id": request.server_id,
                "connection": request.client_id,
            }
        )
        await self._put(record)
        log.info("cluster %s %s", record.cluster, "joined" if first else "reconnected")
        return ""

    async def revoke(self, cluster: str) -> bool:
        """Forget `cluster`'s token and cut its leaf connection; False when it did not
        join by token."""
        record = await self.get(cluster)
        if record is None:
            return False
        await self.kv.delete(cluster)  # first: the leaf that dials again is refused
        if record.server_id and record.connection:
            try:
                await self._kick(record.server_id, record.connection)
            except Exception as exc:  # revoked all the same: refused when it dials again
                log.warning("cluster %s: its leaf connection was not cut: %r", cluster, exc)
                return True
        log.info("cluster %s: join token revoked, leaf connection cut", cluster)
        return True

    async def _kick(self, server_id: str, connection: int) -> None:
        password = self.settings.nats_system_password
        if password is None:
            log.warning(
                "no nats_system_password: the removed cluster's leaf connection stays until "
                "it reconnects (then it is refused)"
            )
            return
        await nats_auth.kick(
            self.settings.nats_url,
            (permissions.SYSTEM_USER, password.get_secret_value()),
            server_id,
            connection,
        )
