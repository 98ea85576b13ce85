"""Filesystem operations shared by the backends: atomic exchange, copies, usage walks."""

from __future__ import annotations

import ctypes
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from services.provisioner.adapters.base import BackendError, BackendUnavailable, InvalidVolume
from services.provisioner.adapters.snapshot_area import SNAPSHOTS_DIR

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(who: str, a: Path, b: Path) -> None:
    """Swap two paths atomically (`renameat2(RENAME_EXCHANGE)`): no moment without either."""
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        renameat2 = libc.renameat2
    except AttributeError as exc:  # C library older than glibc 2.28
        raise BackendUnavailable(f"{who}: renameat2 is not in the C library") from exc
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise BackendError(f"{who}: exchanging {a} and {b}: {os.strerror(err)}")


def copy_tree(who: str, source: Path, target: Path, *, reflink: bool) -> None:
    """`cp -a` (modes, owners, times, links, sparse files) into `target`, which must not exist;
    with `reflink` the copy shares data blocks with the source and fails rather than copy."""
    done = subprocess.run(
        ["cp", "-a", f"--reflink={'always' if reflink else 'never'}", "--", source, target],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackendError(f"{who}: copying {source} to {target}: {done.stderr.strip()}")


def reflink_works(directory: Path) -> bool:
    """Whether `cp --reflink=always` works in `directory`, found by trying it."""
    try:
        with tempfile.TemporaryDirectory(prefix=".reflink-probe-", dir=directory) as tmp:
            probe = Path(tmp) / "probe"
            probe.write_bytes(os.urandom(64 << 10))
            done = subprocess.run(
                ["cp", "--reflink=always", "--", probe, Path(tmp) / "clone"],
                capture_output=True,
                check=False,
            )
            return done.returncode == 0
    except OSError:
        return False


def tree_usage(path: Path) -> int:
    """Bytes allocated to `path` and everything under it, each inode counted once."""
    seen: set[tuple[int, int]] = set()
    top = path.lstat()
    seen.add((top.st_dev, top.st_ino))
    total = top.st_blocks * 512
    pending = [path]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
    return total


def contains(outer: Path, inner: Path) -> bool:
    """Whether `inner` is `outer` or lies beneath it (both resolved)."""
    return inner.resolve().is_relative_to(outer.resolve())


def import_candidate(
    backend: str, root: Path, existing_path: Path, is_volume: Callable[[str], bool]
) -> Path:
    """`existing_path` resolved, if it is a real directory that is none of the backend's
    own (its root, snapshots, volumes, working directories); InvalidVolume otherwise."""

    def refuse(why: str) -> InvalidVolume:
        return InvalidVolume(f"backend {backend}: cannot import {existing_path}: {why}")

    if existing_path.is_symlink() or not existing_path.is_dir():
        raise refuse("not a directory")
    source = existing_path.resolve()
    if contains(source, root) or contains(root / SNAPSHOTS_DIR, source):
        raise refuse("it holds the backend root or its snapshots")
    if source.parent == root.resolve() and (is_volume(source.name) or source.name.startswith(".")):
        raise refuse("it is a volume or working directory of this backend")
    return source
