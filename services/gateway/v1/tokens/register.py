"""Adds the service of proto/vessel/api/v1/tokens.proto to the gateway's server (the inbox
names the servicer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from services.gateway.v1.tokens.tokens import TokenService
from vessel.api.v1 import tokens_pb2_grpc as trpc

ADD: dict[type, Callable[[Any, grpc.aio.Server], None]] = {
    TokenService: trpc.add_TokenServiceServicer_to_server,
}


def register(servicer: object, server: grpc.aio.Server) -> None:
    """KeyError: not a servicer of tokens.proto."""
    ADD[type(servicer)](servicer, server)
