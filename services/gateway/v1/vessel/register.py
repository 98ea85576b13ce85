"""Adds the services of proto/vessel/api/v1/vessel.proto to the gateway's server: the
generated function of each servicer's service (the inbox names which servicers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from services.gateway.v1.vessel.apps import AppService
from services.gateway.v1.vessel.backups import BackupService
from services.gateway.v1.vessel.operations import OperationService
from services.gateway.v1.vessel.restores import RestoreService
from vessel.api.v1 import vessel_pb2_grpc as rpc

ADD: dict[type, Callable[[Any, grpc.aio.Server], None]] = {
    AppService: rpc.add_AppServiceServicer_to_server,
    BackupService: rpc.add_BackupServiceServicer_to_server,
    RestoreService: rpc.add_RestoreServiceServicer_to_server,
    OperationService: rpc.add_OperationServiceServicer_to_server,
}


def register(servicer: object, server: grpc.aio.Server) -> None:
    """KeyError: not a servicer of vessel.proto."""
    ADD[type(servicer)](servicer, server)
