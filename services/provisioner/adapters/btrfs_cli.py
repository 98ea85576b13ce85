"""The `btrfs` command (btrfs-progs), wrapped: subvolumes, qgroups, send and receive.

btrfs-progs is the supported interface to the kernel's btrfs ioctls; no maintained Python
binding covers qgroups and send/receive, so every call here runs the command. Every error
names the caller (`who`, e.g. "backend fast") and the command with its paths.
"""

from __future__ import annotations

import contextlib
import shutil
import struct
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from services.provisioner.adapters.base import BackendError, BackendUnavailable, InvalidVolume

_STREAM_MAGIC = b"btrfs-stream\0"
_CMD_SUBVOL, _CMD_SNAPSHOT = 1, 2  # the first command of a full / incremental stream
_ATTR_UUID, _ATTR_PATH = 1, 15
_CHUNK = 1 << 20


def btrfs(who: str, *args: str | Path) -> str:
    try:
        done = subprocess.run(
            ["btrfs", *map(str, args)], capture_output=True, text=True, check=False
        )
    except FileNotFoundError as exc:
        raise BackendUnavailable(f"{who}: btrfs-progs is not installed") from exc
    if done.returncode != 0:
        raise BackendError(f"{who}: btrfs {' '.join(map(str, args))}: {done.stderr.strip()}")
    return done.stdout


def is_btrfs(path: Path) -> bool:
    return (
        subprocess.run(
            ["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=False
        ).stdout.strip()
        == "btrfs"
    )


@dataclass(frozen=True)
class Qgroup:
    referenced: int
    limit: int | None  # max referenced


def qgroup(who: str, path: Path) -> Qgroup | None:
    """The subvolume's own qgroup (`0/<id>`); counts are as of the last commit."""
    for line in btrfs(who, "qgroup", "show", "-re", "--raw", "-f", path).splitlines():
        fields = line.split()
        if fields and fields[0].startswith("0/"):
            limit = int(fields[3]) if fields[3].isdigit() else None
            return Qgroup(int(fields[1]), limit)
    return None


def set_limit(who: str, path: Path, size_bytes: int) -> None:
    btrfs(who, "qgroup", "limit", str(size_bytes), path)


def sync(who: str, path: Path) -> None:
    """Flush and commit, so qgroup counts include everything written so far."""
    btrfs(who, "filesystem", "sync", path)


def subvolume_field(who: str, path: Path, field: str) -> str | None:
    """A field of `btrfs subvolume show` ("UUID", "Received UUID"…); None when `path` is
    not a subvolume, "-" when unset."""
    try:
        shown = btrfs(who, "subvolume", "show", path)
    except BackendError:
        return None
    for line in shown.splitlines():
        key, _, value = line.strip().partition(":")
        if key == field:
            return value.strip()
    return None


def subvolume_uuids(who: str, root: Path) -> set[str]:
    """UUIDs of every subvolume of the filesystem holding `root`."""
    found = set()
    for line in btrfs(who, "subvolume", "list", "-u", root).splitlines():
        fields = line.split()
        if "uuid" in fields:
            found.add(fields[fields.index("uuid") + 1])
    return found


def is_read_only(who: str, path: Path) -> bool:
    return btrfs(who, "property", "get", "-ts", path, "ro").strip() == "ro=true"


def snapshot(who: str, source: Path, target: Path, *, read_only: bool) -> None:
    btrfs(who, "subvolume", "snapshot", *(["-r"] if read_only else []), source, target)


def delete_subvolume(who: str, path: Path) -> None:
    btrfs(who, "subvolume", "delete", path)


def send(who: str, snapshot_path: Path, out: BinaryIO, parent: Path | None = None) -> int:
    """Write `btrfs send` of a read-only snapshot to `out`; returns the bytes written."""
    args = ["btrfs", "send", "-q", *(["-p", str(parent)] if parent else []), str(snapshot_path)]
    written = 0
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors)
        assert proc.stdout is not None
        try:
            while chunk := proc.stdout.read(_CHUNK):
                out.write(chunk)
                written += len(chunk)
        except BaseException:
            proc.kill()
            raise
        finally:
            proc.stdout.close()
            code = proc.wait()
        if code != 0:
            errors.seek(0)
            raise BackendError(f"{who}: {' '.join(args)}: {errors.read().decode().strip()}")
    return written


@dataclass(frozen=True)
class StreamHead:
    raw: bytes  # what was read, to be fed to `btrfs receive` before the rest
    name: str  # the subvolume the stream creates, named as on the sender
    uuid: str  # the sender's subvolume uuid: the receiver records it as "Received UUID"


def read_stream_head(who: str, stream: BinaryIO) -> StreamHead:
    """Read a send stream's header and first command, which names the subvolume it creates
    (format: the kernel's fs/btrfs/send.h)."""

    def take(n: int) -> bytes:
        data = stream.read(n)
        if len(data) != n:
            raise InvalidVolume(f"{who}: truncated btrfs send stream")
        return data

    header = take(len(_STREAM_MAGIC) + 4)
    if not header.startswith(_STREAM_MAGIC):
        raise InvalidVolume(f"{who}: not a btrfs send stream")
    command = take(10)
    length, kind, _crc = struct.unpack("<IHI", command)
    body = take(length)
    if kind not in (_CMD_SUBVOL, _CMD_SNAPSHOT):
        raise InvalidVolume(f"{who}: btrfs send stream starts with command {kind}")
    attrs: dict[int, bytes] = {}
    offset = 0
    while offset + 4 <= len(body):
        attr, size = struct.unpack_from("<HH", body, offset)
        attrs.setdefault(attr, body[offset + 4 : offset + 4 + size])
        offset += 4 + size
    if _ATTR_PATH not in attrs or len(attrs.get(_ATTR_UUID, b"")) != 16:
        raise InvalidVolume(f"{who}: btrfs send stream names no subvolume")
    name = attrs[_ATTR_PATH].decode(errors="replace")
    return StreamHead(header + command + body, name, str(uuid.UUID(bytes=attrs[_ATTR_UUID])))


def receive(who: str, directory: Path, head: StreamHead, stream: BinaryIO) -> None:
    """`btrfs receive` into `directory`, fed the already-read head then the rest."""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            ["btrfs", "receive", str(directory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        assert proc.stdin is not None
        try:
            try:
                proc.stdin.write(head.raw)
                shutil.copyfileobj(stream, proc.stdin, _CHUNK)
            finally:
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.close()
        except BrokenPipeError:
            pass  # receive stopped early; its exit status and message say why
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        code = proc.wait()
        if code != 0:
            errors.seek(0)
            raise BackendError(
                f"{who}: btrfs receive {directory}: {errors.read().decode().strip()}"
            )
