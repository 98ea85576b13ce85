"""`vessel app list|get` and `vessel operation get|wait`."""

from __future__ import annotations

import argparse
from typing import Any

import grpc

from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc


def app_list(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    reply = rpc.AppServiceStub(ch).ListApps(
        pb.ListAppsRequest(cluster=a.cluster, namespace=a.namespace)
    )
    return list(reply.apps)


def app_get(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    return [rpc.AppServiceStub(ch).GetApp(pb.GetAppRequest(id=a.id))]


def app_unmanage(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    return [rpc.AppServiceStub(ch).UnmanageApp(pb.AppManagementRequest(id=a.id))]


def app_manage(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    return [rpc.AppServiceStub(ch).ManageApp(pb.AppManagementRequest(id=a.id))]


def operation_get(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    return [rpc.OperationServiceStub(ch).GetOperation(pb.GetOperationRequest(id=a.id))]


def operation_wait(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    return [
        rpc.OperationServiceStub(ch).WaitOperation(
            pb.WaitOperationRequest(id=a.id, timeout_seconds=a.timeout)
        )
    ]
