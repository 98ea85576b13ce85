"""Reading one snapshot's tree without restoring it: a directory's entries, a file's bytes
by range, every entry under a path. Behind `vessel backup ls`, `download` and the paths
of `restore-files`.

Paths are looked up name by name in the snapshot's trees and never touch a filesystem, so
no `..` and no symbolic link in a tree can lead anywhere outside it. A path is
`/`-separated and relative to the volume's root (a leading `/` is allowed); an empty,
`.` or `..` component is refused (`BadPath`), not normalised away, so every path names
exactly one entry. Trees and chunks are authenticated as they are read, as in a restore.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from services.mover.repo.errors import CorruptObject, RepositoryError
from services.mover.repo.format import Node, SnapshotDoc
from services.mover.repo.repository import Repository

MAX_PATH = 4096


class BadPath(RepositoryError):
    """A path that is malformed, or names nothing (or the wrong type) in the snapshot."""


def path_parts(path: str) -> list[str]:
    """The names of `path` from the volume's root; `[]` is the root itself."""
    if len(path) > MAX_PATH or "\x00" in path:
        raise BadPath(f"path {path[:64]!r}...: longer than {MAX_PATH} or holds NUL")
    trimmed = path.strip("/") if path.startswith("/") else path.rstrip("/")
    if not trimmed:
        return []
    parts = trimmed.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise BadPath(f"path {path!r}: {part or 'an empty name'!r} is not allowed")
    return parts


def join(parent: str, name: str) -> str:
    return f"{parent.rstrip('/')}/{name}"


@dataclass(frozen=True)
class Found:
    """An entry of the snapshot: `node` is None for the root, a directory; `leading` are
    the directories on the way to it, from the root's first."""

    path: str
    node: Node | None
    leading: tuple[Node, ...] = ()

    @property
    def kind(self) -> str:
        return self.node.type if self.node is not None else "dir"

    @property
    def size(self) -> int:
        if self.node is None:
            return 0
        return self.node.size if self.node.type == "file" else self.node.tree_bytes


class SnapshotReader:
    """One snapshot of `repo`, read on demand (the repository's index must hold its blobs:
    it is reloaded once here)."""

    def __init__(self, repo: Repository, snapshot_id: str) -> None:
        repo.load_index()
        self.repo = repo
        self.snapshot_id = snapshot_id
        self.doc = repo.load_doc("snapshots", snapshot_id, SnapshotDoc)

    def find(self, path: str) -> Found:
        names = path_parts(path)
        tree, node, walked = self.doc.tree, None, ""
        leading: list[Node] = []
        for name in names:
            if node is not None:
                if node.type != "dir":
                    raise BadPath(f"{walked} is a {node.type}, not a directory")
                tree = self.subtree(node, walked)
                leading.append(node)
            walked = join(walked, name)
            node = next(
                (n for n in self.repo.read_tree(tree).nodes if name in (n.name, n.fs_name)),
                None,
            )
            if node is None:
                raise BadPath(f"{walked} is not in snapshot {self.snapshot_id[:12]}")
        return Found(walked or "/", node, tuple(leading))

    def entries(self, path: str) -> list[Found]:
        """The entries of the directory at `path`, in the tree's (name) order."""
        found = self.find(path)
        if found.kind != "dir":
            raise BadPath(f"{found.path} is a {found.kind}, not a directory")
        tree = self.doc.tree if found.node is None else self.subtree(found.node, found.path)
        return [Found(join(found.path, n.name), n) for n in self.repo.read_tree(tree).nodes]

    def walk(self, path: str) -> Iterator[Found]:
        """`path` and, for a directory, everything under it, parents before children."""
        found = self.find(path)
        yield found
        if found.kind == "dir":
            yield from self._below(found)

    def _below(self, found: Found) -> Iterator[Found]:
        tree = self.doc.tree if found.node is None else self.subtree(found.node, found.path)
        for node in self.repo.read_tree(tree).nodes:
            child = Found(join(found.path, node.name), node)
            yield child
            if node.type == "dir":
                yield from self._below(child)

    def read(self, node: Node, offset: int, length: int) -> bytes:
        """Up to `length` bytes of file `node` from `offset`; fewer only at its end."""
        out, position = bytearray(), 0
        end = min(offset + length, node.size)
        for hex_id in node.content:
            if position >= end:
                break
            blob_id = bytes.fromhex(hex_id)
            location = self.repo.index.get(blob_id)
            if location is None:
                raise CorruptObject(f"file {node.name!r}: blob {hex_id} is not in any index")
            following = position + location.raw_length
            if following > offset:
                chunk = self.repo.read_blob(blob_id)
                out += chunk[max(offset - position, 0) : end - position]
            position = following
        return bytes(out)

    def subtree(self, node: Node, path: str) -> str:
        if node.subtree is None:
            raise CorruptObject(f"directory {path} has no subtree")
        return node.subtree
