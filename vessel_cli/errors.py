"""A failed call explained: the status, the fields at fault, and what to do about it."""

from __future__ import annotations

import os

import grpc

from vessel_cli.connection import config_path


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
    # Loaded here: the status details module costs more to import than a successful call.
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

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
