"""Single files of a backup, through the real services: list a backed-up volume's
directories, download a file and a directory (tar), restore chosen paths into the live
claim (in place and into another directory), with the CLI as documented; refused for the
wrong role, outside the caller's scope, and for paths that try to climb out.

NEEDS THE FULL STACK (vessel_dev/rig/stack.py): every service its own process, real NATS,
real S3, emulated Kubernetes API servers.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tarfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from tests.support import backed_up_app, full_stack, vessel_cli
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.api.v1 import tokens_pb2 as tpb
from vessel.api.v1 import tokens_pb2_grpc as trpc
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.kube.client import KubeCluster
from vessel_dev.rig.scenario import APP, CLAIM, NAMESPACE, bound_volume_path
from vessel_dev.rig.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
APP_ID = f"cluster-a.{NAMESPACE}.{APP}"
Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Backed:
    stack: Stack
    backup_id: str
    volume: Path
    tokens: dict[str, str]
    """name → bearer secret: admin, member, elsewhere (member of another namespace), viewer."""

    def auth(self, name: str) -> Metadata:
        return (("authorization", f"Bearer {self.tokens[name]}"),)

    def ref(self, **changes: str) -> ppb.BackupVolumeRef:
        fields = {"bucket": "default", "backup_id": self.backup_id}
        fields |= {"namespace": NAMESPACE, "claim": CLAIM} | changes
        return ppb.BackupVolumeRef(**fields)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with full_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="module")
async def backed(stack: Stack) -> AsyncIterator[Backed]:
    backup_id = await backed_up_app(stack, APP_ID)
    a = KubeCluster(stack.kubeconfigs["cluster-a"], "cluster-a")
    volume = await bound_volume_path(a, NAMESPACE, CLAIM)
    async with grpc.aio.insecure_channel(stack.gateway) as channel:
        tokens = trpc.TokenServiceStub(channel)
        secrets: dict[str, str] = {}
        for name, role, namespaces in [
            ("admin", "admin", []),
            ("member", "member", [NAMESPACE]),
            ("elsewhere", "member", ["other"]),
            ("viewer", "viewer", []),
        ]:
            metadata = (("authorization", f"Bearer {secrets['admin']}"),) if secrets else None
            made = await tokens.CreateToken(
                tpb.CreateTokenRequest(name=name, role=role, namespaces=namespaces),
                metadata=metadata,
            )
            secrets[name] = made.secret
    yield Backed(stack, backup_id, volume, secrets)


async def refused(call: object, code: grpc.StatusCode, text: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == code, caught.value.details()
    assert text in (caught.value.details() or ""), caught.value.details()


async def download(files: prpc.BackupFileServiceStub, b: Backed, path: str) -> tuple[str, bytes]:
    stream = files.DownloadBackupFiles(
        ppb.DownloadBackupFilesRequest(volume=b.ref(), path=path), metadata=b.auth("member")
    )
    pieces = [piece async for piece in stream]
    return pieces[0].format, b"".join(p.data for p in pieces)


async def test_list_download_and_restore_files(backed: Backed) -> None:
    b, volume = backed, backed.volume
    async with grpc.aio.insecure_channel(b.stack.gateway) as channel:
        files = prpc.BackupFileServiceStub(channel)
        root = await files.ListBackupFiles(
            ppb.ListBackupFilesRequest(volume=b.ref()), metadata=b.auth("member")
        )
        assert [(e.path, e.type) for e in root.entries] == [
            ("/current", "symlink"),
            ("/db", "dir"),
            ("/empty", "file"),
            ("/logs", "dir"),
        ]
        assert root.entries[0].target == "logs/2026/11/app-049.log"
        paths, token = [], ""
        while True:  # pages of 20 of the 50 logs
            page = await files.ListBackupFiles(
                ppb.ListBackupFilesRequest(
                    volume=b.ref(), path="/logs/2026/11", page_size=20, page_token=token
                ),
                metadata=b.auth("member"),
            )
            paths += [e.path for e in page.entries]
            token = page.next_page_token
            if not token:
                break
        assert paths == [f"/logs/2026/11/app-{i:03d}.log" for i in range(50)]

        kind, data = await download(files, b, "/db/table.dat")
        assert kind == "file" and data == (volume / "db/table.dat").read_bytes()
        kind, data = await download(files, b, "logs")
        assert kind == "tar"
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            names = tar.getnames()
            assert names[0] == "logs" and len(names) == 53
            member = tar.extractfile("logs/2026/11/app-007.log")
            assert member is not None
            assert member.read() == (volume / "logs/2026/11/app-007.log").read_bytes()

        for path in ("../etc", "/db/../../etc/passwd"):
            await refused(
                files.ListBackupFiles(
                    ppb.ListBackupFilesRequest(volume=b.ref(), path=path), metadata=b.auth("member")
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
                "'.' or '..'",
            )
        await refused(  # a symbolic link is never followed, in the snapshot or out of it
            files.ListBackupFiles(
                ppb.ListBackupFilesRequest(volume=b.ref(), path="/current/x"),
                metadata=b.auth("member"),
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "/current is a symlink, not a directory",
        )
        await refused(
            files.ListBackupFiles(
                ppb.ListBackupFilesRequest(volume=b.ref(claim="nope")), metadata=b.auth("member")
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            f"holds no volume of {NAMESPACE}/nope",
        )
        await refused(
            files.ListBackupFiles(
                ppb.ListBackupFilesRequest(volume=b.ref()), metadata=b.auth("elsewhere")
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            f"namespace '{NAMESPACE}'",
        )
        await refused(
            files.ListBackupFiles(
                ppb.ListBackupFilesRequest(volume=b.ref()), metadata=b.auth("viewer")
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            "needs role member",
        )
        await refused(
            files.RestoreBackupFiles(
                ppb.RestoreBackupFilesRequest(
                    volume=b.ref(), paths=["/empty"], target_namespace="other"
                ),
                metadata=b.auth("member"),
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            "namespace 'other'",
        )
        await refused(
            files.RestoreBackupFiles(
                ppb.RestoreBackupFilesRequest(volume=b.ref(), paths=["/"], target_dir="../up"),
                metadata=b.auth("member"),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "paths[0]: names the whole volume",
        )

        original = (volume / "db/table.dat").read_bytes()
        (volume / "db/table.dat").write_bytes(b"overwritten by mistake")
        (volume / "logs/2026/11/app-001.log").unlink()
        ops = rpc.OperationServiceStub(channel)
        restoring = await files.RestoreBackupFiles(
            ppb.RestoreBackupFilesRequest(
                volume=b.ref(), paths=["/db/table.dat", "/logs/2026/11/app-001.log"]
            ),
            metadata=b.auth("member"),
        )
        done = await ops.WaitOperation(
            pb.WaitOperationRequest(id=restoring.id, timeout_seconds=90), metadata=b.auth("member")
        )
        assert done.phase == "Completed", done.message
        assert "2 files" in done.message
        assert (volume / "db/table.dat").read_bytes() == original
        assert (volume / "logs/2026/11/app-001.log").read_text().startswith("line 1\n")


def cli(b: Backed, token: str, *args: str) -> tuple[int, bytes, str]:
    return vessel_cli(b.stack, b.tokens[token], *args)


async def test_the_cli_as_documented(backed: Backed, tmp_path: Path) -> None:
    b = backed
    volume = f"--volume={NAMESPACE}/{CLAIM}"
    code, out, err = await asyncio.to_thread(
        cli, b, "member", "backup", "ls", b.backup_id, "--bucket", "default", volume, "--path", "db"
    )
    assert code == 0, err
    lines = out.decode().splitlines()
    assert lines[0].split() == ["TYPE", "MODE", "SIZE", "MODIFIED", "PATH"]
    assert [line.split()[-1] for line in lines[1:]] == ["/db/table.dat"]
    assert lines[1].split()[:2] == ["file", "0640"]

    code, out, err = await asyncio.to_thread(
        cli, b, "member", "backup", "download", b.backup_id, "--bucket=default", volume,
        "--path", "/logs/2026/11/app-003.log",
    )  # fmt: skip
    assert code == 0, err
    assert out == (b.volume / "logs/2026/11/app-003.log").read_bytes()

    code, _, err = await asyncio.to_thread(
        cli, b, "member", "backup", "restore-files", b.backup_id, "--bucket=default", volume,
        "--path", "/db", "--path", "empty", "--target-dir", "/restored/today", "--wait",
    )  # fmt: skip
    assert code == 0, err
    today = b.volume / "restored" / "today"
    expected = hashlib.sha256((b.volume / "db/table.dat").read_bytes()).hexdigest()
    assert hashlib.sha256((today / "db/table.dat").read_bytes()).hexdigest() == expected
    assert (today / "empty").read_bytes() == b"" and not (today / "logs").exists()

    code, _, err = await asyncio.to_thread(
        cli, b, "viewer", "backup", "download", b.backup_id, "--bucket=default", volume,
        "--path", "/db/table.dat", "-O", str(tmp_path / "x"),
    )  # fmt: skip
    assert code == 1 and "needs role member" in err and not (tmp_path / "x").exists()


async def test_a_modified_listing_leads_nowhere(backed: Backed) -> None:
    """Someone who can write the bucket rewrites a listing so that a caller scoped to
    `other` passes the gateway's check; protection's verification still refuses. A listing
    claiming the unsealed format is refused too."""
    b, store = backed, backed.stack.store()
    key = f"backups/{b.backup_id}/backup.json"
    original = store.get_bytes(key)
    forged = json.loads(original) | {"namespace": "other", "namespaces": ["other"]}
    forged["volumes"] = [v | {"namespace": "other"} for v in forged["volumes"]]
    store.put_bytes(key, json.dumps(forged).encode())
    legacy = {**forged, "format": "vessel.backup/1", "backup_id": "planted"}
    store.put_bytes("backups/planted/backup.json", json.dumps(legacy).encode())
    try:
        async with grpc.aio.insecure_channel(b.stack.gateway) as channel:
            files = prpc.BackupFileServiceStub(channel)
            await refused(
                files.ListBackupFiles(
                    ppb.ListBackupFilesRequest(volume=b.ref(namespace="other")),
                    metadata=b.auth("elsewhere"),
                ),
                grpc.StatusCode.FAILED_PRECONDITION,
                "disagrees with the sealed record",
            )
            await refused(
                files.ListBackupFiles(
                    ppb.ListBackupFilesRequest(
                        volume=b.ref(namespace="other", backup_id="planted")
                    ),
                    metadata=b.auth("elsewhere"),
                ),
                grpc.StatusCode.FAILED_PRECONDITION,
                "was written unsealed",
            )
    finally:
        store.put_bytes(key, original)
        store.delete("backups/planted/backup.json")
