"""`vessel`: drive Vessel through its gRPC API.

Endpoint, token and TLS files come from flags, else VESSEL_* environment variables, else
~/.config/vessel/config.yaml (see `vessel.cli.connection`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.cli import completion, compose, events, infra, protection, tokens
from vessel.cli.connection import CliConfigError, add_arguments, config_path, open_channel, resolve
from vessel.cli.output import render

Command = Callable[[grpc.Channel, argparse.Namespace], list[Any]]


def app_list(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    reply = rpc.AppServiceStub(ch).ListApps(
        pb.ListAppsRequest(cluster=a.cluster, namespace=a.namespace)
    )
    return list(reply.apps)


def app_get(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    return [rpc.AppServiceStub(ch).GetApp(pb.GetAppRequest(id=a.id))]


def operation_get(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    return [rpc.OperationServiceStub(ch).GetOperation(pb.GetOperationRequest(id=a.id))]


def operation_wait(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    return [
        rpc.OperationServiceStub(ch).WaitOperation(
            pb.WaitOperationRequest(id=a.id, timeout_seconds=a.timeout)
        )
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vessel", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    parser.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
    resources = parser.add_subparsers(dest="resource", required=True)

    app = resources.add_parser("app", help="applications found by discovery").add_subparsers(
        dest="verb", required=True
    )
    p = app.add_parser("list")
    p.add_argument("--cluster", default="")
    p.add_argument("--namespace", default="")
    p.set_defaults(run=app_list)
    p = app.add_parser("get")
    p.add_argument("id", help="<cluster>.<namespace>.<name>")
    p.set_defaults(run=app_get)

    protection.add_parsers(resources)
    compose.add_parsers(resources)

    operation = resources.add_parser("operation", help="long-running operations").add_subparsers(
        dest="verb", required=True
    )
    p = operation.add_parser("get")
    p.add_argument("id")
    p.set_defaults(run=operation_get)
    p = operation.add_parser("wait")
    p.add_argument("id")
    p.add_argument("--timeout", type=float, default=600.0)
    p.set_defaults(run=operation_wait)
    infra.add_parsers(resources, operation)
    completion.add_parser(resources, build_parser)
    tokens.add_parser(resources)
    events.add_parser(resources)
    return parser


def _hint(code: grpc.StatusCode, info: dict[str, str]) -> list[str]:
    where = config_path(os.environ)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return [
            "hint: the gateway wants a valid API token: pass --token, set VESSEL_TOKEN or put "
            f"`token:` in {where}; an admin issues one with `vessel token create`"
        ]
    if code == grpc.StatusCode.PERMISSION_DENIED:
        if "required_role" in info:
            return [f"hint: ask an admin for a token with role {info['required_role']} or higher"]
        if "cluster" in info:
            wanted = info["cluster"] + (f"/{info['namespace']}" if "namespace" in info else "")
            return [
                f"hint: your token's scope is {info.get('scope', '?')}; ask an admin for a "
                f"token scoped to {wanted}"
            ]
    if code == grpc.StatusCode.UNAVAILABLE:
        return [
            "hint: is the gateway running, and does it serve TLS? (--tls-ca for a private CA, "
            "--tls-cert/--tls-key when it requires client certificates)"
        ]
    return []


def explain(error: grpc.RpcError) -> str:
    lines = [f"error: {error.code().name}: {error.details()}"]
    status = rpc_status.from_call(error)
    info: dict[str, str] = {}
    for detail in status.details if status else []:
        bad, why = error_details_pb2.BadRequest(), error_details_pb2.ErrorInfo()
        if detail.Unpack(bad):
            lines += [f"  {v.field}: {v.description}" for v in bad.field_violations]
        elif detail.Unpack(why):
            info.update(why.metadata)
    return "\n".join(lines + _hint(error.code(), info))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(args, "direct"):  # commands that talk to NATS, not the gateway
        code: int = args.direct(args)
        return code
    try:
        connection = resolve(args)
        closing, channel = open_channel(connection)
    except CliConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with closing:
        try:
            results = args.run(channel, args)
        except grpc.RpcError as exc:
            print(explain(exc), file=sys.stderr)
            return 1
    print(render(results, args.output))
    failed = any(getattr(r, "phase", "") in ("Failed", "PartiallyFailed") for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
