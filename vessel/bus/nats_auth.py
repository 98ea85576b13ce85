"""NATS authorization callout messages: the request nats-server sends on
`$SYS.REQ.USER.AUTH` for a connection none of its configured users match, and the signed
answer that admits it as a user with given permissions, or refuses it with a reason.

The keys are nkeys (the `nkeys` library); the JWTs around them are written here because
NATS's JWT library exists for Go and JavaScript only: a NATS JWT is three base64url parts
(header, claims, ed25519 signature of the first two by the issuer's nkey) and the claims
are JSON. The request is read without checking its signature: only nats-server can
publish on the callout subject (it denies it to every client of the callout's account,
and no other account reaches it), and it signs with a key made at its start. `kick` cuts
a connection through the system account.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import nats
import nkeys

CALLOUT_SUBJECT = "$SYS.REQ.USER.AUTH"
_HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}


class CalloutError(ValueError):
    """A callout request that is not one (its part or field named)."""


def new_issuer() -> tuple[str, str]:
    """A new account nkey: (seed, public key). The public key goes into the server's
    `auth_callout { issuer }`; the seed signs the answers and stays secret."""
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_ACCOUNT)
    return seed.decode(), issuer_of(seed.decode())


def issuer_of(seed: str) -> str:
    """The public key of an account nkey seed; ValueError for a seed that is not one."""
    try:
        pair = nkeys.from_seed(seed.encode())
    except (nkeys.NkeysError, binascii.Error, ValueError) as exc:
        raise ValueError(f"not an nkey seed ({type(exc).__name__})") from None
    public = str(pair.public_key.decode())
    if not public.startswith("A"):
        raise ValueError("not an account nkey seed (its public key must begin with A)")
    return public


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(claims: dict[str, Any], seed: str) -> str:
    """`claims` as a JWT signed by `seed`, with its issuer, issue time and id set."""
    pair = nkeys.from_seed(seed.encode())
    body = {**claims, "iat": int(time.time()), "iss": pair.public_key.decode(), "jti": ""}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()
    body["jti"] = base64.b32encode(digest).decode().rstrip("=")
    signed = f"{_b64(json.dumps(_HEADER).encode())}.{_b64(json.dumps(body).encode())}"
    return f"{signed}.{_b64(pair.sign(signed.encode()))}"


def claims_of(token: str) -> dict[str, Any]:
    """The claims of a JWT (unverified, see the module doc); CalloutError if malformed."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise CalloutError(f"a JWT has 3 parts, this has {len(parts)}")
    try:
        claims = json.loads(_unb64(parts[1]))
    except (binascii.Error, ValueError) as exc:
        raise CalloutError(f"the JWT's claims are not base64url JSON: {exc}") from None
    if not isinstance(claims, dict):
        raise CalloutError("the JWT's claims are not a JSON object")
    return claims


@dataclass(frozen=True)
class CalloutRequest:
    """Who asks to connect: the user and password it gave, and what answers need."""

    server_id: str
    user_nkey: str
    user: str
    password: str
    client_id: int
    kind: str
    """`Client` or `Leafnode`."""

    @classmethod
    def parse(cls, token: bytes) -> CalloutRequest:
        claims = claims_of(token.decode(errors="replace"))
        nats = claims.get("nats")
        if not isinstance(nats, dict) or nats.get("type") != "authorization_request":
            raise CalloutError("not an authorization request (nats.type)")
        try:
            options, client = nats.get("connect_opts") or {}, nats.get("client_info") or {}
            return cls(
                server_id=str(nats["server_id"]["id"]),
                user_nkey=str(nats["user_nkey"]),
                user=str(options.get("user", "")),
                password=str(options.get("pass", "")),
                client_id=int(client.get("id", 0)),
                kind=str(client.get("kind", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CalloutError(f"authorization request lacks {exc}") from None


def admit(
    request: CalloutRequest,
    seed: str,
    *,
    account: str,
    name: str,
    publish: tuple[str, ...],
    subscribe: tuple[str, ...],
) -> bytes:
    """The answer admitting `request` into `account` as user `name` allowed to publish and
    subscribe to exactly the given subjects."""
    user = encode(
        {
            "sub": request.user_nkey,
            "aud": account,
            "name": name,
            "nats": {
                "pub": {"allow": list(publish)},
                "sub": {"allow": list(subscribe)},
                "type": "user",
                "version": 2,
            },
        },
        seed,
    )
    return _answer(request, seed, jwt=user, error="")


def refuse(request: CalloutRequest, seed: str, reason: str) -> bytes:
    """The answer refusing `request`; nats-server logs `reason`."""
    return _answer(request, seed, jwt="", error=reason)


def _answer(request: CalloutRequest, seed: str, *, jwt: str, error: str) -> bytes:
    claims = {
        "sub": request.user_nkey,
        "aud": request.server_id,
        "nats": {"jwt": jwt, "error": error, "type": "authorization_response", "version": 2},
    }
    return encode(claims, seed).encode()


async def kick(url: str, system: tuple[str, str], server_id: str, connection: int) -> None:
    """Close connection `connection` of server `server_id` as the system account's user
    `system` (user, password): a leaf or client whose credential was revoked."""
    user, password = system
    nc = await nats.connect(
        url, user=user, password=password, name="vessel-system", allow_reconnect=False
    )
    try:
        payload = json.dumps({"cid": int(connection)}).encode()
        await nc.request(f"$SYS.REQ.SERVER.{server_id}.KICK", payload, timeout=5)
    finally:
        await nc.close()


def main() -> None:
    """`python -m vessel.bus.nats_auth`: a new account nkey for the hub's callout, as
    `VESSEL_NATS_CALLOUT_SEED=...` and `issuer: ...` lines (keep the seed secret)."""
    seed, public = new_issuer()
    print(f"VESSEL_NATS_CALLOUT_SEED={seed}")
    print(f"issuer: {public}")


if __name__ == "__main__":
    main()
