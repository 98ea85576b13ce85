"""Backup of a directory tree into the repository.

The walk (main thread) reads metadata and recurses; files are chunked, hashed, compressed
and sealed by a pool of workers, which release the GIL in the C libraries. A file whose
size, mtime, ctime and inode match its node in the parent snapshot, and whose chunks are
all in the index, is not read again. Hard links are read once. Files are read through
ordinary reads, not mmap, so a file truncated under a live backup cannot crash the mover.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
import subprocess
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from pyfastcdc import FastCDC

from services.mover.repo.btrfs_changes import dirty_directories
from services.mover.repo.format import Node, RootMeta, SnapshotDoc
from services.mover.repo.locks import Held
from services.mover.repo.progress import Progress, Report, reporting
from services.mover.repo.repository import Repository
from services.mover.repo.retention import save_snapshot
from services.mover.repo.writer import BlobWriter

BATCH = 64
CHUNK_REPORT_FROM = 8 << 20
"""Files larger than this count in the progress chunk by chunk, smaller ones when done."""
NODE_DEFAULTS = {
    name: field.get_default(call_default_factory=True)
    for name, field in Node.model_fields.items()
    if not field.is_required()
}
SPECIAL = {
    stat.S_IFIFO: "fifo",
    stat.S_IFCHR: "chardev",
    stat.S_IFBLK: "blockdev",
    stat.S_IFSOCK: "socket",
}


def is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_xattrs(path: Path) -> dict[str, str]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    found = {}
    for name in names:
        try:
            found[name] = base64.b64encode(os.getxattr(path, name, follow_symlinks=False)).decode()
        except OSError:
            continue
    return found


def chunks_of(f: BinaryIO, size: int, cdc: FastCDC, chunk_min: int) -> Iterable[bytes | memoryview]:
    """A file's chunks as the repository cuts them: one (even empty) up to `chunk_min`,
    else content-defined. A restore is read back by this same rule (`verify.py`)."""
    if size <= chunk_min:
        return [f.read()]
    return (c.data for c in cdc.cut_stream(f))


def measure(root: Path) -> tuple[int, int]:
    """(regular files, their bytes) under `root`, links not followed, by `find` (outside
    the interpreter, so the backup's own walk keeps the GIL); what cannot be read is left
    out (the backup itself reports it)."""
    found = subprocess.run(
        ["find", str(root), "-type", "f", "-printf", "%s\n"],
        capture_output=True,
        check=False,
    )
    sizes = found.stdout.split()
    return len(sizes), sum(map(int, sizes))


class Archiver:
    def __init__(
        self,
        repo: Repository,
        *,
        workers: int = 3,
        progress: Report | None = None,
        interval: float | None = None,
    ) -> None:
        self.repo = repo
        self.workers = workers
        self.progress = Progress()
        self._report = progress
        self._interval = interval
        self._cdc = FastCDC(avg_size=repo.config.chunk_avg)
        self._links: dict[tuple[int, int], Future[tuple[list[str], bool]]] = {}
        self._pool: ThreadPoolExecutor
        self._links_lock = threading.Lock()

    def backup(
        self,
        source: Path,
        *,
        parent: str | None = None,
        tags: dict[str, str] | None = None,
        changed: set[str] | None = None,
    ) -> tuple[str, SnapshotDoc]:
        """Back `source` up as a snapshot. With `parent`, files whose metadata is unchanged
        are not read; with `changed` too (every path that differs from the parent's source,
        e.g. from btrfs), nothing outside those paths is even listed or stat'ed."""
        parent_doc = self.repo.load_doc("snapshots", parent, SnapshotDoc) if parent else None
        self._changed = changed if parent_doc else None
        self._measured = False
        self._dirty = dirty_directories(changed) if changed is not None and parent_doc else None
        lock = Held(self.repo, "backup")  # first our lock, then the others' (see locks.py)
        self.repo.load_index()
        self.repo.excluded_packs = {
            p for other in lock.others() if other.kind == "prune" for p in other.doomed
        }
        writer = BlobWriter(self.repo)
        self._writer = writer
        root = self._root_meta(source)  # before the walk: what the volume was when it began
        if parent_doc is not None:  # a first estimate, for an ETA from the first report
            self.progress.total, self.progress.total_files = parent_doc.bytes, parent_doc.files
        if self._changed is None:  # a walk of everything is the backup's cost anyway
            threading.Thread(target=self._measure, args=(source,), daemon=True).start()
        try:
            with reporting(self.progress, self._report, self._interval):
                with ThreadPoolExecutor(self.workers, thread_name_prefix="chunk") as pool:
                    self._pool = pool
                    root_nodes = self._parent_nodes(parent_doc.tree if parent_doc else None)
                    tree_id, files, size = self._directory(source, root_nodes, "")
                self._measured = True  # the run's own count is exact: no estimate after it
                self.progress.total, self.progress.total_files = size, files
                writer.flush()  # every pack and index is stored before the snapshot names them
            doc = SnapshotDoc(
                time=datetime.now(UTC),
                tree=tree_id,
                root=root,
                parent=parent,
                hostname=socket.gethostname(),
                source=str(source),
                tags=tags or {},
                files=files,
                bytes=size,
            )
            return save_snapshot(self.repo, doc, writer.retain), doc
        finally:
            writer.close()
            lock.release()

    def _measure(self, source: Path) -> None:
        """The run's totals, from a walk of metadata only (no file is opened), unless the
        run finished first."""
        files, size = measure(source)
        if not self._measured:
            self.progress.total, self.progress.total_files = size, files

    def _parent_nodes(self, tree_id: str | None) -> dict[str, Node]:
        if tree_id is None or bytes.fromhex(tree_id) not in self.repo.index:
            return {}
        return {n.fs_name: n for n in self.repo.read_tree(tree_id).nodes}

    def _unchanged(self, rel: str, old: Node | None) -> dict[str, object] | None:
        """The parent's node, when change tracking says nothing at `rel` changed."""
        if self._changed is None or old is None or rel in self._changed:
            return None
        if old.type == "dir" and (rel in (self._dirty or ()) or old.subtree is None):
            return None
        if old.type == "file" and (old.links > 1 or not self.repo.has_all(old.content)):
            return None  # another name of a hard link may have changed it
        self._count_reused(old)
        return old.model_dump(exclude_defaults=True)

    def _count_reused(self, node: Node) -> None:
        if node.type == "file":
            self.progress.add(1, node.size, skipped=True)
        elif node.type == "dir":
            self.progress.add(node.tree_files, node.tree_bytes, skipped=True)

    def _directory(self, path: Path, previous: dict[str, Node], rel: str) -> tuple[str, int, int]:
        """Walk one directory: subdirectories here, files in batches on the workers (one
        task per batch of small files keeps task overhead off the per-file cost)."""
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
        slots: list[Future[list[dict[str, object]]] | dict[str, object]] = []
        batch: list[str] = []
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            reused = self._unchanged(child, previous.get(entry.name))
            if reused is not None:
                slots.append(reused)
                continue
            if entry.is_file(follow_symlinks=False):
                batch.append(entry.name)
                if len(batch) == BATCH:
                    slots.append(self._pool.submit(self._files, path, batch, previous))
                    batch = []
                continue
            if batch:
                slots.append(self._pool.submit(self._files, path, batch, previous))
                batch = []
            slots.append(self._other(path, entry.name, previous, child))
        if batch:
            slots.append(self._pool.submit(self._files, path, batch, previous))
        nodes: list[dict[str, object]] = []
        files = size = 0
        for slot in slots:
            for doc in slot.result() if isinstance(slot, Future) else [slot]:
                if doc["type"] == "file":
                    files, size = files + 1, size + int(doc.get("size", 0))  # type: ignore[call-overload]
                elif doc["type"] == "dir":
                    files += int(doc.get("tree_files", 0))  # type: ignore[call-overload]
                    size += int(doc.get("tree_bytes", 0))  # type: ignore[call-overload]
                nodes.append({k: v for k, v in doc.items() if NODE_DEFAULTS.get(k, ...) != v})
        # The documents are built here from stat results, so they are valid by construction;
        # readers validate every tree with the `Tree` model.
        raw = json.dumps({"nodes": nodes}, separators=(",", ":")).encode()
        tree_id = self.repo.key.blob_id(raw)
        self._writer.add(tree_id, "tree", raw)
        return tree_id.hex(), files, size

    @staticmethod
    def _root_meta(source: Path) -> RootMeta:
        st = source.stat()
        return RootMeta(
            mode=stat.S_IMODE(st.st_mode),
            uid=st.st_uid,
            gid=st.st_gid,
            mtime_ns=st.st_mtime_ns,
            xattrs=read_xattrs(source),
        )

    @staticmethod
    def _meta(full: Path, name: str, st: os.stat_result) -> dict[str, object]:
        """A node's metadata. Access times are left out on purpose: reading a file for the
        backup changes its atime, so keeping it would make every backup's trees new."""
        node: dict[str, object] = {
            "name": name,
            "mode": stat.S_IMODE(st.st_mode),
            "uid": st.st_uid,
            "gid": st.st_gid,
            "mtime_ns": st.st_mtime_ns,
            "ctime_ns": st.st_ctime_ns,
            "inode": st.st_ino,
            "links": st.st_nlink,
            "device": st.st_dev,
            "xattrs": read_xattrs(full),
        }
        if not is_utf8(name):  # bytes from the filesystem that are not UTF-8
            node["name"] = os.fsencode(name).decode("utf-8", "replace")
            node["name_raw"] = base64.b64encode(os.fsencode(name)).decode()
        return node

    def _other(
        self, path: Path, name: str, previous: dict[str, Node], rel: str
    ) -> dict[str, object]:
        full = path / name
        st = full.lstat()
        node = self._meta(full, name, st)
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFDIR:
            old = previous.get(name)
            subtree = old.subtree if old is not None and old.type == "dir" else None
            subtree_id, files, size = self._directory(full, self._parent_nodes(subtree), rel)
            node.update(type="dir", subtree=subtree_id, tree_files=files, tree_bytes=size)
        elif kind == stat.S_IFLNK:
            target = os.readlink(full)
            node.update(type="symlink", target=target)
            if not is_utf8(target):
                node["target"] = os.fsencode(target).decode("utf-8", "replace")
                node["target_raw"] = base64.b64encode(os.fsencode(target)).decode()
        elif kind == stat.S_IFREG:  # became a file since the listing
            node.update(self._files(path, [name], previous)[0])
        else:
            node.update(type=SPECIAL.get(kind, "fifo"), rdev=st.st_rdev)
        return node

    def _files(
        self, path: Path, names: list[str], previous: dict[str, Node]
    ) -> list[dict[str, object]]:
        docs = []
        for name in names:
            full = path / name
            st = full.lstat()
            node = self._meta(full, name, st)
            node.update(type="file", size=st.st_size)
            content, sparse = self._content(full, st, previous.get(name))
            node.update(content=content, sparse=sparse)
            docs.append(node)
        return docs

    def _content(self, path: Path, st: os.stat_result, old: Node | None) -> tuple[list[str], bool]:
        if (
            old is not None
            and old.type == "file"
            and old.size == st.st_size
            and old.mtime_ns == st.st_mtime_ns
            and old.ctime_ns == st.st_ctime_ns
            and old.inode == st.st_ino
            and self.repo.has_all(old.content)
        ):
            self.progress.add(1, st.st_size, skipped=True)
            return old.content, old.sparse
        if st.st_nlink > 1:
            link = (st.st_dev, st.st_ino)
            with self._links_lock:
                first = link not in self._links
                if first:
                    self._links[link] = Future()
            if not first:
                return self._links[link].result()
            try:
                result = self._chunk(path, st)
            except BaseException as exc:
                self._links[link].set_exception(exc)  # the other names must not wait forever
                raise
            self._links[link].set_result(result)
            return result
        return self._chunk(path, st)

    def _chunk(self, path: Path, st: os.stat_result) -> tuple[list[str], bool]:
        ids: list[str] = []
        new = total = 0
        with path.open("rb", buffering=0) as f:
            chunks = chunks_of(f, st.st_size, self._cdc, self.repo.config.chunk_min)
            per_chunk = st.st_size > CHUNK_REPORT_FROM  # a large file moves the bar as it goes
            for data in chunks:
                blob_id = self.repo.key.blob_id(data)
                stored = self._writer.add(blob_id, "data", data)
                new += len(data) if stored else 0
                total += len(data)
                ids.append(blob_id.hex())
                if per_chunk:
                    self.progress.add(0, len(data), len(data) if stored else 0)
        if per_chunk:
            self.progress.add(1, 0)
        else:
            self.progress.add(1, total, new)
        return ids, st.st_blocks * 512 < st.st_size
