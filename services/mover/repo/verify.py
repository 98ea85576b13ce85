"""Reading a restored tree back and comparing it with the snapshot it came from.

Every entry the snapshot names must be in the target with its type; a file with its size
and its content, chunked as a backup chunks it and each chunk's keyed hash compared with
the tree's chunk ids (so nothing is fetched from the bucket again); a symbolic link with
its target. Entries the snapshot does not name are no difference (a restore never
deletes). Directories are checked with lstat before their entries are read, so a link in
the target is reported, never followed.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from pyfastcdc import FastCDC

from services.mover.repo.archiver import chunks_of
from services.mover.repo.browse import SnapshotReader
from services.mover.repo.errors import RepositoryError
from services.mover.repo.format import Node
from services.mover.repo.progress import Progress
from services.mover.repo.repository import Repository

SHOWN = 10
TYPES = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo",
    stat.S_IFCHR: "chardev",
    stat.S_IFBLK: "blockdev",
    stat.S_IFSOCK: "socket",
}


class RestoreDiffers(RepositoryError):
    """A restored tree is not what its snapshot holds; the message names the paths."""


@dataclass
class Checked:
    progress: Progress
    files: int = 0
    bytes: int = 0
    differences: list[str] = field(default_factory=list)


def verify_restored(
    repo: Repository, snapshot_id: str, target: Path, progress: Progress | None = None
) -> Checked:
    """`target` against the whole snapshot; `RestoreDiffers` lists what differs. Each file
    read counts in `progress` (whose report may stop the run)."""
    reader = SnapshotReader(repo, snapshot_id)
    cdc = FastCDC(avg_size=repo.config.chunk_avg)
    checked = Checked(progress or Progress())
    checked.progress.total = reader.doc.bytes
    skipped: list[str] = []  # directories found missing or wrong: their entries are not read
    for found in reader.walk("/"):
        node = found.node
        if node is None or any(found.path.startswith(d + "/") for d in skipped):
            continue
        problem = _compare(repo, cdc, node, target / found.path.lstrip("/"), checked)
        if problem:
            checked.differences.append(f"{found.path}: {problem}")
            if node.type == "dir":
                skipped.append(found.path)
    if checked.differences:
        count, shown = len(checked.differences), "; ".join(checked.differences[:SHOWN])
        more = f"; and {count - SHOWN} more" if count > SHOWN else ""
        raise RestoreDiffers(
            f"restored data differs from snapshot {snapshot_id[:12]} in {count} entries: "
            f"{shown}{more}"
        )
    return checked


def _compare(repo: Repository, cdc: FastCDC, node: Node, path: Path, checked: Checked) -> str:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "missing"
    found = TYPES.get(stat.S_IFMT(st.st_mode), "unknown")
    if found != node.type:
        return f"is a {found}, the backup holds a {node.type}"
    if node.type == "symlink":
        target = os.readlink(path)
        return "" if target == node.fs_target else f"points to {target!r}, not {node.fs_target!r}"
    if node.type != "file":
        return ""
    if st.st_size != node.size:
        return f"has {st.st_size} bytes, the backup {node.size}"
    ids = _chunk_ids(repo, cdc, path, st.st_size)
    if ids != node.content:
        same = min(len(ids), len(node.content))
        first = next((i for i in range(same) if ids[i] != node.content[i]), same)
        return f"content differs (from chunk {first} of {len(node.content)})"
    checked.files += 1
    checked.bytes += st.st_size
    checked.progress.add(1, st.st_size)
    return ""


def _chunk_ids(repo: Repository, cdc: FastCDC, path: Path, size: int) -> list[str]:
    with path.open("rb", buffering=0) as f:
        return [repo.key.blob_id(c).hex() for c in chunks_of(f, size, cdc, repo.config.chunk_min)]
