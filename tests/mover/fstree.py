"""Building directory trees with every kind of entry, and comparing two trees exactly."""

from __future__ import annotations

import hashlib
import os
import random
import stat
from dataclasses import dataclass
from pathlib import Path

KIB = 1 << 10
MIB = 1 << 20
OLD_NS = 1_500_000_000_123_456_789  # a fixed past time with a nanosecond part
OWNER = (1234, 5678)


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def text_bytes(size: int) -> bytes:
    """Highly compressible, yet not repetitive at the chunk level."""
    lines, total, i = [], 0, 0
    while total < size:
        line = f"{i:09d} the quick brown fox jumps over the lazy dog, record {i * 7919}\n".encode()
        lines.append(line)
        total += len(line)
        i += 1
    return b"".join(lines)[:size]


def user_xattrs_supported(directory: Path) -> bool:
    probe = directory / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
    except OSError:
        return False
    finally:
        probe.unlink()
    return True


@dataclass(frozen=True)
class RichTree:
    root: Path
    xattrs: bool  # user xattrs were set (the filesystem accepts them)


def build_rich_tree(root: Path) -> RichTree:
    root.mkdir(parents=True)
    files = {
        "empty.bin": b"",
        "one.bin": b"\x07",
        "medium.bin": random_bytes(300 * KIB, 1),
        "random.bin": random_bytes(5 * MIB, 2),
        "text.txt": text_bytes(5 * MIB),
        "with space and  two spaces.txt": b"spaces\n",
        "ünïcødé 名前 🚀.txt": "ünïcødé\n".encode(),
        "nested/a/b/c/deep.txt": b"deep\n" * 100,
        "nested/a/b/small.bin": random_bytes(3000, 3),
        "private.key": b"secret\n",
        "script.sh": b"#!/bin/sh\necho hi\n",
        "readonly.txt": b"read only\n",
        "readonly_dir/inside.txt": b"inside a read-only directory\n",
        "owned.txt": b"owned by someone else\n",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for rel in ("empty_dir", "nested/empty_inner", "private_dir"):
        (root / rel).mkdir(parents=True, exist_ok=True)
    # a hard-link group of three names in three directories
    os.link(root / "medium.bin", root / "nested/hard-medium.bin")
    os.link(root / "medium.bin", root / "nested/a/hard-again.bin")
    os.symlink("/etc/hostname", root / "abs_link")
    os.symlink("nested/a/b/c/deep.txt", root / "rel_link")
    os.symlink("../text.txt", root / "nested/up_link")
    os.symlink("no/such/target", root / "dangling")
    os.mkfifo(root / "pipe", 0o600)
    os.chmod(root / "pipe", 0o640)
    with (root / "sparse.img").open("wb") as f:
        f.truncate(20 * MIB)
        f.seek(10 * MIB)
        f.write(random_bytes(KIB, 4))
    for rel, mode in {
        "private.key": 0o600,
        "script.sh": 0o755,
        "readonly.txt": 0o444,
        "private_dir": 0o750,
        "readonly_dir": 0o555,
    }.items():
        os.chmod(root / rel, mode)
    if os.geteuid() == 0:
        os.chown(root / "owned.txt", *OWNER)
        os.chown(root / "private_dir", *OWNER)
    xattrs = user_xattrs_supported(root)
    if xattrs:
        os.setxattr(root / "text.txt", "user.comment", b"a comment")
        os.setxattr(root / "text.txt", "user.binary", bytes(range(256)))
        os.setxattr(root / "nested", "user.dir", b"on a directory")
    set_times(root)
    return RichTree(root, xattrs)


def set_times(root: Path) -> None:
    """Distinct old mtimes everywhere, children before their directory."""
    count = 0
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in sorted(filenames + dirnames):
            count += 1
            stamp = OLD_NS + count * 1_000_003
            os.utime(Path(dirpath) / name, ns=(stamp, stamp), follow_symlinks=False)


def entries(root: Path) -> dict[str, os.stat_result]:
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            found[full.relative_to(root).as_posix()] = full.lstat()
    return found


def digest(path: Path) -> str:
    h = hashlib.blake2b()
    with path.open("rb") as f:
        while block := f.read(MIB):
            h.update(block)
    return h.hexdigest()


def user_xattrs(path: Path) -> dict[str, bytes]:
    names = os.listxattr(path, follow_symlinks=False)
    return {n: os.getxattr(path, n, follow_symlinks=False) for n in names if n.startswith("user.")}


def _is_sparse(st: os.stat_result) -> bool:
    return st.st_blocks * 512 < st.st_size


def _link_groups(found: dict[str, os.stat_result]) -> set[frozenset[str]]:
    groups: dict[tuple[int, int], set[str]] = {}
    for rel, st in found.items():
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            groups.setdefault((st.st_dev, st.st_ino), set()).add(rel)
    return {frozenset(g) for g in groups.values() if len(g) > 1}


def compare_trees(expected: Path, actual: Path, *, special_metadata: bool = True) -> list[str]:
    """Every difference between two trees (the roots themselves excepted): names, types,
    content, mode, owner, mtime_ns, symlink targets, user xattrs, holes of sparse files and
    hard-link groups. `special_metadata=False` skips mode/owner/mtime of fifos and devices."""
    want, got = entries(expected), entries(actual)
    diffs = [f"missing: {rel}" for rel in sorted(want.keys() - got.keys())]
    diffs += [f"extra: {rel}" for rel in sorted(got.keys() - want.keys())]
    for rel in sorted(want.keys() & got.keys()):
        a, b = want[rel], got[rel]
        if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode):
            diffs.append(f"{rel}: type {stat.filemode(a.st_mode)} != {stat.filemode(b.st_mode)}")
            continue
        regular, directory, link = (
            stat.S_ISREG(a.st_mode),
            stat.S_ISDIR(a.st_mode),
            stat.S_ISLNK(a.st_mode),
        )
        if special_metadata or regular or directory or link:
            if not link and stat.S_IMODE(a.st_mode) != stat.S_IMODE(b.st_mode):
                diffs.append(f"{rel}: mode {a.st_mode:o} != {b.st_mode:o}")
            if (a.st_uid, a.st_gid) != (b.st_uid, b.st_gid):
                diffs.append(f"{rel}: owner {a.st_uid}:{a.st_gid} != {b.st_uid}:{b.st_gid}")
            if a.st_mtime_ns != b.st_mtime_ns:
                diffs.append(f"{rel}: mtime_ns {a.st_mtime_ns} != {b.st_mtime_ns}")
        if regular:
            if a.st_size != b.st_size or digest(expected / rel) != digest(actual / rel):
                diffs.append(f"{rel}: content differs")
            if _is_sparse(a) and not _is_sparse(b):
                diffs.append(f"{rel}: holes lost ({b.st_blocks * 512} of {b.st_size} allocated)")
        if link and os.readlink(expected / rel) != os.readlink(actual / rel):
            diffs.append(f"{rel}: symlink target differs")
        if (regular or directory) and user_xattrs(expected / rel) != user_xattrs(actual / rel):
            diffs.append(f"{rel}: xattrs differ")
    common = want.keys() & got.keys()
    want_links = {g & common for g in _link_groups(want) if len(g & common) > 1}
    got_links = {g & common for g in _link_groups(got) if len(g & common) > 1}
    if want_links != got_links:
        want_text, got_text = sorted(map(sorted, want_links)), sorted(map(sorted, got_links))
        diffs.append(f"hard links: {want_text} != {got_text}")
    return diffs
