"""`vessel backend|storageclass|volume|volumesnapshot|cluster|operation|activity ...`:
infrastructure, operations and the activity log.

List verbs walk every page unless `--page-size` or `--page-token` asks for one page; the
next page's token is then printed on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import yaml
from google.protobuf.json_format import ParseDict
from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Struct

from vessel.api.v1 import infra_pb2 as ipb
from vessel.api.v1 import infra_pb2_grpc as irpc
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc

Fetch = Callable[[str, int], tuple[list[Message], str]]


def _pages(args: argparse.Namespace, fetch: Fetch) -> list[Any]:
    """Every page, or the one page asked for (its next token on stderr)."""
    one_page = bool(args.page_size or args.page_token)
    token, found = args.page_token, []
    while True:
        items, token = fetch(token, args.page_size)
        found += items
        if not token:
            return found
        if one_page:
            print(f"more: --page-token {token}", file=sys.stderr)
            return found


def _load_backend(path: str) -> Struct:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        doc = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise SystemExit(f"error: cannot read backend file {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise SystemExit(f"error: {path} must hold one backend configuration (a mapping)")
    return ParseDict(doc, Struct())


def backend_list(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    stub = irpc.BackendServiceStub(ch)

    def fetch(token: str, size: int) -> tuple[list[Message], str]:
        r = stub.ListBackends(
            ipb.ListBackendsRequest(cluster=a.cluster, page_size=size, page_token=token)
        )
        return list(r.backends), r.next_page_token

    return _pages(a, fetch)


def backend_get(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    stub = irpc.BackendServiceStub(ch)
    return [stub.GetBackend(ipb.GetBackendRequest(cluster=a.cluster, name=a.name))]


def backend_add(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    request = ipb.PutBackendRequest(
        cluster=a.cluster, backend=_load_backend(a.file), request_id=a.request_id
    )
    stub = irpc.BackendServiceStub(ch)
    return [stub.UpdateBackend(request) if a.verb == "update" else stub.AddBackend(request)]


def backend_remove(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    stub = irpc.BackendServiceStub(ch)
    request = ipb.RemoveBackendRequest(cluster=a.cluster, name=a.name, request_id=a.request_id)
    return [stub.RemoveBackend(request)]


def storageclass_list(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    stub = irpc.StorageClassServiceStub(ch)

    def fetch(token: str, size: int) -> tuple[list[Message], str]:
        r = stub.ListStorageClasses(
            ipb.ListStorageClassesRequest(cluster=a.cluster, page_size=size, page_token=token)
        )
        return list(r.storage_classes), r.next_page_token

    return _pages(a, fetch)


def volume_list(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    stub = irpc.VolumeServiceStub(ch)

    def fetch(token: str, size: int) -> tuple[list[Message], str]:
        r = stub.ListVolumes(
            ipb.ListVolumesRequest(
                cluster=a.cluster,
                namespace=a.namespace,
                backend=a.backend,
                state=a.state,
                page_size=size,
                page_token=token,
            )
        )
        return list(r.volumes), r.next_page_token

    return _pages(a, fetch)


def volume_get(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    stub = irpc.VolumeServiceStub(ch)
    return [stub.GetVolume(ipb.GetVolumeRequest(cluster=a.cluster, id=a.id))]


def volumesnapshot_list(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    stub = irpc.VolumeSnapshotServiceStub(ch)

    def fetch(token: str, size: int) -> tuple[list[Message], str]:
        r = stub.ListVolumeSnapshots(
            ipb.ListVolumeSnapshotsRequest(
                cluster=a.cluster,
                namespace=a.namespace,
                volume_id=a.volume,
                page_size=size,
                page_token=token,
            )
        )
        return list(r.volume_snapshots), r.next_page_token

    return _pages(a, fetch)


def cluster_list(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    stub = irpc.ClusterServiceStub(ch)

    def fetch(token: str, size: int) -> tuple[list[Message], str]:
        r = stub.ListClusters(
            ipb.ListClustersRequest(state=a.state, page_size=size, page_token=token)
        )
        return list(r.clusters), r.next_page_token

    return _pages(a, fetch)


def cluster_get(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    return [irpc.ClusterServiceStub(ch).GetCluster(ipb.GetClusterRequest(id=a.id))]


def cluster_register(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    inline = ""
    if a.kubeconfig:
        try:
            inline = Path(a.kubeconfig).read_text()
        except OSError as exc:
            raise SystemExit(f"error: cannot read kubeconfig {a.kubeconfig}: {exc}") from None
    request = ipb.RegisterClusterRequest(
        id=a.id, kubeconfig=inline, kubeconfig_path=a.kubeconfig_path, request_id=a.request_id
    )
    return [irpc.ClusterServiceStub(ch).RegisterCluster(request)]


def cluster_remove(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    request = ipb.RemoveClusterRequest(id=a.id, request_id=a.request_id)
    return [irpc.ClusterServiceStub(ch).RemoveCluster(request)]


def cluster_join_token(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    request = ipb.CreateJoinTokenRequest(id=a.id, ttl_seconds=a.ttl)
    reply = irpc.ClusterServiceStub(ch).CreateJoinToken(request)
    print(
        f"join token for cluster {reply.cluster!r} created; it is shown this once. In that "
        f"cluster, its leaf NATS dials the hub with it: "
        f"nats-leaf://{reply.cluster}:TOKEN@HUB:7422 (README, 'Add a cluster')",
        file=sys.stderr,
    )
    return [reply]


def operation_list(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    stub = rpc.OperationServiceStub(ch)

    def fetch(token: str, size: int) -> tuple[list[Message], str]:
        r = stub.ListOperations(
            pb.ListOperationsRequest(
                kind=a.kind, phase=a.phase, app_id=a.app, page_size=size, page_token=token
            )
        )
        return list(r.operations), r.next_page_token

    return _pages(a, fetch)


def operation_cancel(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    stub = rpc.OperationServiceStub(ch)
    return [stub.CancelOperation(pb.CancelOperationRequest(id=a.id))]


def activity_list(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    stub = irpc.ActivityServiceStub(ch)

    def fetch(token: str, size: int) -> tuple[list[Message], str]:
        r = stub.ListActivity(
            ipb.ListActivityRequest(
                identity=a.identity, action=a.action, page_size=size, page_token=token
            )
        )
        return list(r.records), r.next_page_token

    return _pages(a, fetch)
