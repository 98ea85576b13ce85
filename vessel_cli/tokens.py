"""`vessel token create|list|revoke`: API tokens (an admin's task)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import grpc

from vessel.api.v1 import tokens_pb2 as tpb
from vessel.api.v1 import tokens_pb2_grpc as trpc
from vessel_cli.options import parse_ttl as parse_ttl  # where it was before the grammar moved


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
