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
from vessel.cli import output

# Table columns of the messages these verbs print (output.py renders every message kind).
output.COLUMNS.update(
    {
        "Backend": ["cluster", "name", "type", "capacity_bytes", "free_bytes", "volumes", "pools"],
        "BackendChange": ["operation_id", "cluster", "name", "action", "pools"],
        "StorageClass": ["cluster", "name", "provisioner", "reclaim_policy", "is_default"],
        "Volume": ["cluster", "id", "namespace", "claim", "backend", "pool", "size_bytes",
                   "used_bytes", "state"],
        "VolumeSnapshot": ["cluster", "id", "namespace", "name", "claim", "state", "created"],
        "Cluster": ["id", "state", "source", "server", "reason"],
        "ClusterChange": ["operation_id", "cluster", "action"],
        "Activity": ["time", "identity", "action", "target", "outcome", "message"],
    }
)  # fmt: skip

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


def _paged(p: argparse.ArgumentParser) -> None:
    p.add_argument("--page-size", type=int, default=0, help="one page of this many (max 1000)")
    p.add_argument("--page-token", default="", help="the page after this token")


def _verbs(resources: Any, name: str, help: str) -> Any:
    return resources.add_parser(name, help=help).add_subparsers(dest="verb", required=True)


def _backend(resources: Any) -> None:
    verbs = _verbs(resources, "backend", "storage backends and pools (changes: admin only)")
    p = verbs.add_parser("list", help="backends with pools, capacity and free space")
    p.add_argument("--cluster", default="", help="only this cluster")
    _paged(p)
    p.set_defaults(run=backend_list)
    p = verbs.add_parser("get")
    p.add_argument("name")
    p.add_argument("--cluster", required=True)
    p.set_defaults(run=backend_get)
    for verb in ("add", "update"):
        p = verbs.add_parser(verb, help=f"{verb} a backend from a YAML file (as in the settings)")
        p.add_argument("-f", "--file", required=True, help="YAML backend configuration; - stdin")
        p.add_argument("--cluster", required=True)
        p.add_argument("--request-id", default="", help="idempotency key")
        p.set_defaults(run=backend_add)
    p = verbs.add_parser("remove", help="remove a backend holding no volumes")
    p.add_argument("name")
    p.add_argument("--cluster", required=True)
    p.add_argument("--request-id", default="", help="idempotency key")
    p.set_defaults(run=backend_remove)


def _cluster(resources: Any) -> None:
    verbs = _verbs(resources, "cluster", "managed clusters (changes: admin only)")
    p = verbs.add_parser("list")
    p.add_argument("--state", default="", help="Available, Unreachable, Connecting")
    _paged(p)
    p.set_defaults(run=cluster_list)
    p = verbs.add_parser("get")
    p.add_argument("id")
    p.set_defaults(run=cluster_get)
    p = verbs.add_parser("register", help="register a cluster with a kubeconfig")
    p.add_argument("id", help="cluster id (a DNS label)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--kubeconfig", help="local kubeconfig file, sent inline")
    source.add_argument("--kubeconfig-path", default="", help="a path discovery itself reads")
    p.add_argument("--request-id", default="", help="idempotency key")
    p.set_defaults(run=cluster_register)
    p = verbs.add_parser("remove", help="stop managing a cluster")
    p.add_argument("id")
    p.add_argument("--request-id", default="", help="idempotency key")
    p.set_defaults(run=cluster_remove)


def add_parsers(resources: Any, operation: Any) -> None:
    """The infrastructure resources, and `list`/`cancel` on the existing `operation` verbs."""
    _backend(resources)
    verbs = _verbs(resources, "storageclass", "the clusters' StorageClasses")
    p = verbs.add_parser("list")
    p.add_argument("--cluster", default="", help="only this cluster")
    _paged(p)
    p.set_defaults(run=storageclass_list)
    verbs = _verbs(resources, "volume", "volumes Vessel provisioned")
    p = verbs.add_parser("list")
    for flag in ("--cluster", "--namespace", "--backend", "--state"):
        p.add_argument(flag, default="")
    _paged(p)
    p.set_defaults(run=volume_list)
    p = verbs.add_parser("get")
    p.add_argument("id", help="volume id")
    p.add_argument("--cluster", required=True)
    p.set_defaults(run=volume_get)
    verbs = _verbs(resources, "volumesnapshot", "snapshots of Vessel volumes")
    p = verbs.add_parser("list")
    for flag in ("--cluster", "--namespace", "--volume"):
        p.add_argument(flag, default="")
    _paged(p)
    p.set_defaults(run=volumesnapshot_list)
    _cluster(resources)
    p = operation.add_parser("list", help="operations, newest first")
    p.add_argument("--kind", default="", help="backup, restore, snapshot, ...")
    p.add_argument("--phase", default="", help="New, InProgress, Completed, Failed, Canceled...")
    p.add_argument("--app", default="", help="app id")
    _paged(p)
    p.set_defaults(run=operation_list)
    p = operation.add_parser("cancel", help="cancel a running operation")
    p.add_argument("id")
    p.set_defaults(run=operation_cancel)
    verbs = _verbs(resources, "activity", "who did what, newest first")
    p = verbs.add_parser("list")
    p.add_argument("--identity", default="", help="only this caller (token name)")
    p.add_argument("--action", default="", help="only this action, e.g. backup, backend.add")
    _paged(p)
    p.set_defaults(run=activity_list)
