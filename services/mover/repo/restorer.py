"""Restore of a snapshot into a directory, empty or not.

Safety: every name in a tree is a plain name (validated by the format); directories are
opened one level at a time with O_NOFOLLOW relative to their parent (`dirhandles`), so no
symbolic link — pre-existing in the target or restored from the snapshot — can redirect a
write outside the target. Links from the snapshot are created last. Restoring into a
non-empty directory replaces what the snapshot names and leaves everything else in place
(as restic and Velero do): a restore never deletes data it was not asked about.

Speed: blobs are fetched pack by pack (whole packs when most of a pack is wanted, byte
ranges otherwise) by a pool of threads, authenticated, decompressed, checked against their
id and written with pwrite at their offsets. The thread that completes a file's last
write sets its size, owner, mode and times. All-zero chunks of sparse files are skipped,
leaving holes.
"""

from __future__ import annotations

import base64
import contextlib
import os
import resource
import shutil
import stat
import threading
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from services.mover.repo.browse import BadPath, Found, SnapshotReader, path_parts
from services.mover.repo.dirhandles import DirectoryHandles
from services.mover.repo.errors import CorruptObject, UnsafeTree
from services.mover.repo.format import Node, RootMeta
from services.mover.repo.pack import Location
from services.mover.repo.progress import Progress, Report, reporting
from services.mover.repo.repository import Repository

WHOLE_PACK = 0.5
Write = tuple[bytes, Location, int, int]  # blob id, where it is, file index, offset


@dataclass
class Item:
    parent: int  # directory handle index
    node: Node


@dataclass
class Stats:
    files: int = 0
    bytes: int = 0
    dirs: int = 0
    links: int = 0


@dataclass
class Plan:
    files: list[Item] = field(default_factory=list)
    others: list[Item] = field(default_factory=list)
    dirs: list[tuple[int, Node]] = field(default_factory=list)
    writes: dict[str, list[Write]] = field(default_factory=lambda: defaultdict(list))
    first_link: dict[tuple[int, int], int] = field(default_factory=dict)
    remaining: list[int] = field(default_factory=list)
    fresh: set[int] = field(default_factory=lambda: {-1})


def choose(reader: SnapshotReader, paths: Sequence[str]) -> list[Found]:
    """The entries `paths` name; the root, or one path inside another, is refused (the
    whole snapshot is a restore without paths)."""
    chosen = [reader.find(p) for p in paths]
    for one in chosen:
        if one.node is None:
            raise BadPath("the root is not a path to pick: restore without paths instead")
        for other in chosen:
            if other is not one and (one.path + "/").startswith(other.path + "/"):
                raise BadPath(f"path {one.path} is {other.path} or inside it: name it once")
    return chosen


class Restorer:
    def __init__(
        self,
        repo: Repository,
        *,
        workers: int = 4,
        progress: Report | None = None,
        interval: float | None = None,
    ) -> None:
        self.repo = repo
        self.workers = workers
        self.is_root = os.geteuid() == 0
        self.owner = (os.geteuid(), os.getegid())
        self._lock = threading.Lock()
        self.progress = Progress()
        self._report = progress
        self._interval = interval

    def restore(
        self, snapshot_id: str, target: Path, paths: Sequence[str] = (), into: str = ""
    ) -> Stats:
        """The whole snapshot into `target`; or, given `paths`, only those entries (with
        the directories leading to them) under `target`/`into`."""
        reader = SnapshotReader(self.repo, snapshot_id)  # reloads the index: newer snapshots
        snapshot = reader.doc
        chosen = choose(reader, paths) if paths else None
        self.progress.total = sum(f.size for f in chosen) if chosen else snapshot.bytes
        self.progress.total_files = (
            sum(f.node.tree_files if f.kind == "dir" and f.node else 1 for f in chosen)
            if chosen
            else snapshot.files
        )
        target.mkdir(parents=True, exist_ok=True)
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.dirs = DirectoryHandles(target, limit=min(256, soft // 4))
        plan = Plan()
        try:
            if chosen is None:
                self._walk(snapshot.tree, 0, plan)
            else:
                self._select(reader, chosen, into, plan)
            with reporting(self.progress, self._report, self._interval):
                self._fetch_all(plan)
            for item in plan.others:
                self._create_other(item, plan)
            for index, node in reversed(plan.dirs):  # deepest first: times stick
                with self.dirs.open(index) as fd:
                    self._apply_meta(node, fd)
            if snapshot.root is not None and chosen is None:  # the target itself, last
                with self.dirs.open(0) as fd:
                    self._apply_meta(snapshot.root, fd)
        finally:
            self.dirs.close()
        return Stats(
            files=len(plan.files),
            bytes=sum(i.node.size for i in plan.files),
            dirs=len(plan.dirs),
            links=len(plan.others),
        )

    # --- structure -------------------------------------------------------------------------
    def _walk(self, tree_id: str, parent: int, plan: Plan) -> None:
        for node in self.repo.read_tree(tree_id).nodes:
            if node.type == "dir":
                if node.subtree is None:
                    raise CorruptObject(f"tree {tree_id}: directory {node.name!r} has no subtree")
                index = self._make_dir(parent, node.fs_name, plan)
                plan.dirs.append((index, node))
                self._walk(node.subtree, index, plan)
            elif node.type == "file" and not self._is_extra_link(node, plan):
                self._make_file(parent, node, plan)
            else:
                self._clear(parent, node.fs_name, plan)
                plan.others.append(Item(parent, node))

    def _select(self, reader: SnapshotReader, chosen: list[Found], into: str, plan: Plan) -> None:
        """Plan `chosen` and the directories leading to them; a directory made on the way
        gets the snapshot's metadata (or, in `into`, the usual 0755)."""
        base = 0
        for name in path_parts(into):
            base = self._make_dir(base, name, plan)
            if base in plan.fresh:
                with self.dirs.open(base) as fd:
                    os.fchmod(fd, 0o755)
        for found in chosen:
            parent = base
            for leading in found.leading:
                parent = self._make_dir(parent, leading.fs_name, plan)
                if parent in plan.fresh:
                    plan.dirs.append((parent, leading))
            node = found.node
            assert node is not None
            if node.type == "dir":
                index = self._make_dir(parent, node.fs_name, plan)
                plan.dirs.append((index, node))
                self._walk(reader.subtree(node, found.path), index, plan)
            elif node.type == "file" and not self._is_extra_link(node, plan):
                self._make_file(parent, node, plan)
            else:
                self._clear(parent, node.fs_name, plan)
                plan.others.append(Item(parent, node))

    @staticmethod
    def _is_extra_link(node: Node, plan: Plan) -> bool:
        return node.links > 1 and (node.device, node.inode) in plan.first_link

    def _clear(self, parent: int, name: str, plan: Plan, keep_dir: bool = False) -> None:
        """Remove what stands in the way in an existing directory (never follows links)."""
        if parent in plan.fresh:
            return
        with self.dirs.open(parent) as fd:
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return
            if stat.S_ISDIR(st.st_mode):
                if not keep_dir:
                    shutil.rmtree(name, dir_fd=fd)
            else:
                os.unlink(name, dir_fd=fd)

    def _make_dir(self, parent: int, name: str, plan: Plan) -> int:
        self._clear(parent, name, plan, keep_dir=True)
        with self.dirs.open(parent) as fd:
            try:
                os.mkdir(name, 0o700, dir_fd=fd)
                fresh = True
            except FileExistsError:
                fresh = False
        index = self.dirs.add(parent, name)
        try:
            with self.dirs.open(index):
                pass  # refuses a symbolic link or anything but a directory
        except OSError as exc:
            raise UnsafeTree(f"cannot open directory {name!r} safely: {exc}") from exc
        if fresh:
            plan.fresh.add(index)
        return index

    def _make_file(self, parent: int, node: Node, plan: Plan) -> None:
        """Plan the file's writes; it is created by its first write (or here when empty)."""
        self._clear(parent, node.fs_name, plan)
        index = len(plan.files)
        plan.files.append(Item(parent, node))
        plan.remaining.append(len(node.content))
        if node.links > 1:
            plan.first_link[(node.device, node.inode)] = index
        offset = 0
        for hex_id in node.content:
            blob_id = bytes.fromhex(hex_id)
            location = self.repo.index.get(blob_id)
            if location is None:
                raise CorruptObject(f"file {node.name!r}: blob {hex_id} is not in any index")
            plan.writes[location.pack].append((blob_id, location, index, offset))
            offset += location.raw_length
        if not node.content:
            self._write(plan, index, None, 0, counts=False)

    # --- data ----------------------------------------------------------------------------------
    def _fetch_all(self, plan: Plan) -> None:
        with ThreadPoolExecutor(self.workers, thread_name_prefix="restore") as pool:
            for future in [
                pool.submit(self._fetch_pack, pack, writes, plan)
                for pack, writes in plan.writes.items()
            ]:
                future.result()

    def _fetch_pack(self, pack: str, writes: list[Write], plan: Plan) -> None:
        by_blob: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
        locations: dict[bytes, Location] = {}
        for blob_id, location, file_index, offset in writes:
            by_blob[blob_id].append((file_index, offset))
            locations[blob_id] = location
        wanted = sum(loc.length for loc in locations.values())
        end = max(loc.offset + loc.length for loc in locations.values())
        key = self.repo.pack_key(pack)
        data = self.repo.store.get_range(key, 0, end) if wanted >= WHOLE_PACK * end else None
        for blob_id, location in sorted(locations.items(), key=lambda kv: kv[1].offset):
            sealed = (
                memoryview(data)[location.offset : location.offset + location.length]
                if data is not None
                else self.repo.store.get_range(key, location.offset, location.length)
            )
            if len(sealed) != location.length:
                raise CorruptObject(f"pack {pack}: truncated at blob {blob_id.hex()}")
            plain = self.repo.decode_blob(blob_id, location, sealed)
            zero = not any(plain[:64]) and plain.count(0) == len(plain)
            for file_index, offset in by_blob[blob_id]:
                hole = zero and plan.files[file_index].node.sparse
                self._write(plan, file_index, None if hole else plain, offset)

    def _write(
        self, plan: Plan, index: int, data: bytes | None, offset: int, counts: bool = True
    ) -> None:
        """Write one chunk, then count it done; whoever completes the file finishes it."""
        item = plan.files[index]
        if data is None and counts:
            with self._lock:
                plan.remaining[index] -= 1
                if plan.remaining[index]:
                    return  # a hole, and other chunks are still to come
            counts = False
        with self.dirs.open(item.parent) as dir_fd:
            fd = os.open(
                item.node.fs_name, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd
            )
        try:
            if data is not None:
                os.pwrite(fd, data, offset)
            last = True
            if counts:
                with self._lock:
                    plan.remaining[index] -= 1
                    last = plan.remaining[index] == 0
            self.progress.add(1 if last else 0, len(data) if data is not None else 0)
            if last:
                if data is None or offset + len(data) != item.node.size:
                    os.ftruncate(fd, item.node.size)  # holes at the end, or no content
                self._apply_meta(item.node, fd)
        finally:
            os.close(fd)

    # --- metadata ----------------------------------------------------------------------------
    def _apply_meta(self, node: Node | RootMeta, fd: int) -> None:
        if self.is_root and (node.uid, node.gid) != self.owner:
            with contextlib.suppress(OSError):
                os.fchown(fd, node.uid, node.gid)
        os.fchmod(fd, node.mode)
        for name, value in node.xattrs.items():
            with contextlib.suppress(OSError):
                os.setxattr(fd, name, base64.b64decode(value))
        os.utime(fd, ns=(node.atime_ns or node.mtime_ns, node.mtime_ns))

    def _create_other(self, item: Item, plan: Plan) -> None:
        node = item.node
        name = node.fs_name
        if node.type == "file":  # a further name of a hard-linked file
            first = plan.files[plan.first_link[(node.device, node.inode)]]
            with self.dirs.open(first.parent) as src, self.dirs.open(item.parent) as dst:
                os.link(first.node.fs_name, name, src_dir_fd=src, dst_dir_fd=dst)
            return
        with self.dirs.open(item.parent) as fd:
            if node.type == "symlink":
                os.symlink(node.fs_target, name, dir_fd=fd)
            elif node.type == "fifo":
                os.mkfifo(name, node.mode, dir_fd=fd)
            elif node.type in ("chardev", "blockdev") and self.is_root:
                kind = stat.S_IFCHR if node.type == "chardev" else stat.S_IFBLK
                os.mknod(name, node.mode | kind, node.rdev, dir_fd=fd)
            else:
                return  # sockets are not restored; device nodes only by root
            if self.is_root:
                with contextlib.suppress(OSError):
                    os.chown(name, node.uid, node.gid, dir_fd=fd, follow_symlinks=False)
            if node.type != "symlink":  # a link's own mode is meaningless on Linux
                os.chmod(name, node.mode, dir_fd=fd)
            with contextlib.suppress(OSError, NotImplementedError):
                os.utime(
                    name,
                    ns=(node.atime_ns or node.mtime_ns, node.mtime_ns),
                    dir_fd=fd,
                    follow_symlinks=False,
                )
