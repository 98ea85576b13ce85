"""`vessel token create|list|revoke`: API tokens (an admin's task)."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

import grpc

from vessel.api.v1 import tokens_pb2 as tpb
from vessel.api.v1 import tokens_pb2_grpc as trpc

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
TTL = re.compile(r"^(\d+)([smhdwy]?)$")
ROLES = ("viewer", "member", "owner", "admin")


def parse_ttl(text: str) -> int:
    """`30d`, `12h`, `90m`, `45s`, `2w`, `1y` or plain seconds; `0` or `never`: no expiry."""
    if text.strip().lower() == "never":
        return 0
    match = TTL.match(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration like 30d, 12h, 90m, 45s (or never)"
        )
    return int(match[1]) * UNITS[match[2] or "s"]


def token_create(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    reply: tpb.CreateTokenResponse = trpc.TokenServiceStub(ch).CreateToken(
        tpb.CreateTokenRequest(
            name=a.name,
            role=a.role,
            clusters=a.cluster,
            namespaces=a.namespace,
            ttl_seconds=a.ttl,
        )
    )
    print(
        f"token {reply.token.name!r} created; its secret is shown this once, store it now "
        "(e.g. VESSEL_TOKEN or `token:` in ~/.config/vessel/config.yaml)",
        file=sys.stderr,
    )
    return [reply]


def token_list(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    reply: tpb.ListTokensResponse = trpc.TokenServiceStub(ch).ListTokens(tpb.ListTokensRequest())
    return list(reply.tokens)


def token_revoke(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    revoked = trpc.TokenServiceStub(ch).RevokeToken(tpb.RevokeTokenRequest(name=a.name))
    print(f"token {a.name!r} revoked", file=sys.stderr)
    return [revoked]


def add_parser(resources: Any) -> None:
    token = resources.add_parser("token", help="API tokens (admin only)").add_subparsers(
        dest="verb", required=True
    )
    p = token.add_parser("create", help="issue a token; prints its secret once")
    p.add_argument("name", help="token name (a DNS label); recorded as requested_by")
    p.add_argument("--role", choices=ROLES, required=True)
    p.add_argument(
        "--cluster", action="append", default=[], help="scope to this cluster (repeatable)"
    )
    p.add_argument(
        "--namespace", action="append", default=[], help="scope to this namespace (repeatable)"
    )
    p.add_argument(
        "--ttl", type=parse_ttl, default=0, help="lifetime: 30d, 12h, 90m, 45s (default never)"
    )
    p.set_defaults(run=token_create)
    p = token.add_parser("list", help="tokens, without secrets")
    p.set_defaults(run=token_list)
    p = token.add_parser("revoke", help="revoke a token at once")
    p.add_argument("name")
    p.set_defaults(run=token_revoke)
