"""`vessel backup ls|restore-files|download`: single files of a backed-up volume, read
from the bucket without restoring the volume."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import grpc

from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel_cli.options import namespaced
from vessel_cli.protection import all_pages, watch


def _claim(text: str, flag: str) -> tuple[str, str]:
    found = namespaced(text)
    if found is None:
        raise SystemExit(f"error: {flag} takes NAMESPACE/CLAIM, not {text!r}")
    return found


def _ref(a: argparse.Namespace) -> ppb.BackupVolumeRef:
    namespace, claim = _claim(a.volume, "--volume")
    return ppb.BackupVolumeRef(
        bucket=a.bucket, backup_id=a.backup, namespace=namespace, claim=claim, cluster=a.cluster
    )


def backup_ls(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    stub, ref = prpc.BackupFileServiceStub(ch), _ref(a)

    def fetch(token: str, size: int) -> tuple[list[Any], str]:
        request = ppb.ListBackupFilesRequest(
            volume=ref, path=a.path, page_size=min(size, 1000), page_token=token
        )
        reply = stub.ListBackupFiles(request)
        return list(reply.entries), reply.next_page_token

    return all_pages(fetch, a.limit)


def backup_restore_files(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    namespace, claim = _claim(a.to_claim, "--to-claim") if a.to_claim else ("", "")
    op = prpc.BackupFileServiceStub(ch).RestoreBackupFiles(
        ppb.RestoreBackupFilesRequest(
            volume=_ref(a),
            paths=a.paths,
            target_cluster=a.to_cluster,
            target_namespace=namespace,
            target_claim=claim,
            target_dir=a.target_dir,
            request_id=a.request_id,
        )
    )
    return [watch(ch, op, a)]


def backup_download(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    stream = prpc.BackupFileServiceStub(ch).DownloadBackupFiles(
        ppb.DownloadBackupFilesRequest(volume=_ref(a), path=a.path)
    )
    first = next(stream)  # errors (scope, path) come before anything is written
    out = sys.stdout.buffer if a.out == "-" else open(a.out, "wb")
    try:
        out.write(first.data)
        for piece in stream:
            out.write(piece.data)
    finally:
        out.flush()
        if out is not sys.stdout.buffer:
            out.close()
    if a.out != "-":
        print(f"wrote {first.name} ({first.format}) to {a.out}", file=sys.stderr)
    return []
