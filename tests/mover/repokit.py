"""Repository utilities for the mover tests: creating and reopening repositories, counting
object-store writes, and crafting snapshots by hand (as someone holding the key could)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.mover.repo.format import IndexDoc, SnapshotDoc
from services.mover.repo.repository import Repository
from services.mover.repo.restorer import Restorer, Stats
from services.mover.repo.writer import BlobWriter
from vessel.objectstore.base import ObjectStore, Retain
from vessel.sealed.providers.password import PasswordKey

PASSWORD = "correct horse battery staple"
PREFIX = "repository"
CHUNK_AVG = 64 << 10
PACK_SIZE = 1 << 20


def new_repository(store: ObjectStore, prefix: str = PREFIX) -> Repository:
    return Repository.init(
        store, prefix, PasswordKey(PASSWORD), chunk_avg=CHUNK_AVG, pack_size=PACK_SIZE
    )


def reopen(repo: Repository) -> Repository:
    """The repository as a fresh process sees it: everything read back from the store."""
    return Repository.open(repo.store, repo.prefix, PasswordKey(PASSWORD))


def restore_fresh(repo: Repository, snapshot_id: str, target: Path, *, workers: int = 1) -> Stats:
    """Restore from a freshly opened repository. One worker unless asked: fidelity tests
    stay apart from the race between concurrent chunk writes, which has its own test."""
    return Restorer(reopen(repo), workers=workers).restore(snapshot_id, target)


def objects(repo: Repository, kind: str) -> list[str]:
    """Keys of one kind of object: "data", "index", "snapshots" or "keys"."""
    return repo.store.list(repo.path(kind) + "/")


def pack_ids(repo: Repository) -> set[str]:
    return {key.rsplit("/", 1)[1] for key in objects(repo, "data")}


def index_docs(repo: Repository) -> dict[str, IndexDoc]:
    return {
        key.rsplit("/", 1)[1]: repo.load_doc("index", key.rsplit("/", 1)[1], IndexDoc)
        for key in objects(repo, "index")
    }


def blobs_in_packs(repo: Repository, packs: set[str]) -> set[str]:
    found = set()
    for doc in index_docs(repo).values():
        for entry in doc.packs:
            if entry.pack in packs:
                found.update(b.id for b in entry.blobs)
    return found


def count_puts(monkeypatch: pytest.MonkeyPatch, store: ObjectStore) -> list[str]:
    """Record the key of every `put_bytes` from now on (thread-safe)."""
    keys: list[str] = []
    lock = threading.Lock()
    real = store.put_bytes

    def put_bytes(key: str, data: bytes, retain: Retain | None = None) -> None:
        real(key, data, retain)
        with lock:
            keys.append(key)

    monkeypatch.setattr(store, "put_bytes", put_bytes)
    return keys


def data_keys(keys: list[str]) -> list[str]:
    return [k for k in keys if "/data/" in k]


def file_node_chunks(repo: Repository, tree_id: str, name: str) -> list[str]:
    (node,) = [n for n in repo.read_tree(tree_id).nodes if n.name == name]
    return list(node.content)


class Crafter:
    """Writes hand-made blobs, trees and a snapshot with the repository's real key."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.writer = BlobWriter(repo)

    def data(self, payload: bytes) -> str:
        blob_id = self.repo.key.blob_id(payload)
        self.writer.add(blob_id, "data", payload)
        return blob_id.hex()

    def tree(self, nodes: list[dict[str, Any]]) -> str:
        raw = json.dumps({"nodes": nodes}).encode()
        blob_id = self.repo.key.blob_id(raw)
        self.writer.add(blob_id, "tree", raw)
        return blob_id.hex()

    def snapshot(self, root_tree: str) -> str:
        self.writer.flush()
        self.writer.close()
        return self.repo.save_doc("snapshots", SnapshotDoc(time=datetime.now(UTC), tree=root_tree))


def file_node(name: str, content: list[str], size: int) -> dict[str, Any]:
    return {"name": name, "type": "file", "mode": 0o644, "size": size, "content": content}
