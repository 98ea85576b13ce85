"""Opening and creating a repository; sealed documents; the in-memory index; blob reads.

Object layout under the repository prefix (docs/formats.md): `config`, `keys/<id>`,
`data/<2 hex>/<pack id>`, `index/<id>`, `snapshots/<id>`, `locks/<id>`.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

import blake3
import zstandard
from pydantic import BaseModel, ValidationError

from services.mover.repo.errors import (
    CorruptObject,
    RepositoryExists,
    RepositoryMissing,
    UnknownFormat,
)
from services.mover.repo.format import FORMAT, IndexDoc, RepoConfig, SnapshotDoc, Tree
from services.mover.repo.pack import Location
from vessel.objectstore.base import ObjectNotFound, ObjectStore, Retain
from vessel.objectstore.lock import lock_policy
from vessel.sealed.documents import open_or_create_master_key
from vessel.sealed.keys import KeyProvider, MasterKey, open_master_key

M = TypeVar("M", bound=BaseModel)
_local = threading.local()


def decompressor() -> zstandard.ZstdDecompressor:
    if not hasattr(_local, "dctx"):
        _local.dctx = zstandard.ZstdDecompressor()
    return _local.dctx  # type: ignore[no-any-return]


MAX_DOCUMENT = 1 << 30


def unzstd(data: bytes, what: str) -> bytes:
    try:
        return decompressor().decompress(data, max_output_size=MAX_DOCUMENT)
    except zstandard.ZstdError as exc:
        raise CorruptObject(f"{what}: does not decompress ({exc})") from exc


class Repository:
    def __init__(self, store: ObjectStore, prefix: str, key: MasterKey, config: RepoConfig) -> None:
        self.store = store
        self.prefix = prefix.strip("/")
        self.key = key
        self.config = config
        self.index: dict[bytes, Location] = {}
        self._loaded: set[str] = set()
        self.excluded_packs: set[str] = set()
        """Packs a running prune may delete: a backup must not reuse their blobs."""
        self.pack_until: dict[str, datetime] = {}
        """Retentions this process set or read, by pack (object lock; services/mover/repo/
        retention.py): retentions only grow, so a remembered date is a safe lower bound."""
        self.tree_until: dict[str, datetime] = {}
        """Trees every pack under which is known to stay locked at least until the date."""
        self._lock = threading.Lock()

    # --- object names -------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return "/".join([self.prefix, *parts])

    def pack_key(self, pack_id: str) -> str:
        return self.path("data", pack_id[:2], pack_id)

    # --- creation and opening -----------------------------------------------------------
    @classmethod
    def init(
        cls,
        store: ObjectStore,
        prefix: str,
        provider: KeyProvider,
        *,
        chunk_avg: int = 1 << 20,
        pack_size: int = 16 << 20,
        like: Repository | None = None,
    ) -> Repository:
        """Create a repository. `like`: share that repository's chunk-id key and chunker
        (not its encryption key), so blob ids agree and `copy_snapshot` between the two
        transfers only the blobs the destination lacks."""
        prefix = prefix.strip("/")
        if store.exists(f"{prefix}/config"):
            raise RepositoryExists(f"a repository exists at {store.bucket}/{prefix}")
        if like is not None:
            chunk_avg = like.config.chunk_avg
        # Sealed documents (protection) may have come first and made the key: adopt it.
        key = open_or_create_master_key(store, prefix, provider, like.key if like else None)
        if like is not None and key.chunk_id != like.key.chunk_id:
            raise RepositoryExists(
                f"{store.bucket}/{prefix} already has a master key that was not made "
                f"like {like.store.bucket}/{like.prefix}"
            )
        config = RepoConfig(
            format=FORMAT,
            id=uuid.uuid4().hex,
            chunk_min=chunk_avg // 4,
            chunk_avg=chunk_avg,
            chunk_max=chunk_avg * 4,
            pack_size=pack_size,
            created=datetime.now(UTC),
        )
        repo = cls(store, prefix, key, config)
        store.put_bytes(f"{prefix}/config", key.seal(config.model_dump_json().encode(), b"config"))
        return repo

    @classmethod
    def open(cls, store: ObjectStore, prefix: str, provider: KeyProvider) -> Repository:
        prefix = prefix.strip("/")
        try:
            sealed_config = store.get_bytes(f"{prefix}/config")
        except ObjectNotFound:
            raise RepositoryMissing(f"no repository at {store.bucket}/{prefix}") from None
        key = open_master_key(store, prefix, provider)
        plain = key.open(sealed_config, b"config", f"{prefix}/config")
        try:
            config = RepoConfig.model_validate_json(plain)
        except ValidationError as exc:
            if '"format"' in plain.decode(errors="replace") and FORMAT not in plain.decode():
                raise UnknownFormat(f"{prefix}/config: unsupported repository format") from exc
            raise CorruptObject(f"{prefix}/config: {exc.errors()[0]['msg']}") from exc
        repo = cls(store, prefix, key, config)
        repo.load_index()
        return repo

    # --- sealed JSON documents ------------------------------------------------------------
    def retain(self) -> Retain | None:
        """The retention of what is written now, when the bucket's setting locks objects."""
        policy = lock_policy(self.store)
        return policy.retain() if policy is not None else None

    def save_doc(self, kind: str, doc: BaseModel, retain: Retain | None = None) -> str:
        """Documents are zstd-compressed JSON, sealed with their kind as associated data."""
        plain = zstandard.ZstdCompressor(level=3).compress(doc.model_dump_json().encode())
        sealed = self.key.seal(plain, kind.encode())
        doc_id = blake3.blake3(sealed).hexdigest()
        self.store.put_bytes(self.path(kind, doc_id), sealed, retain)
        return doc_id

    def load_doc(self, kind: str, doc_id: str, model: type[M]) -> M:
        name = self.path(kind, doc_id)
        plain = unzstd(self.key.open(self.store.get_bytes(name), kind.encode(), name), name)
        try:
            return model.model_validate_json(plain)
        except ValidationError as exc:
            raise CorruptObject(
                f"{name}: {exc.error_count()} invalid fields, first: "
                f"{exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}"
            ) from exc

    # --- index ------------------------------------------------------------------------------
    def load_index(self) -> None:
        """Bring the in-memory index up to date with the bucket. New index objects are
        added; if any loaded one is gone (a prune rewrote the index), everything is
        reloaded, so blobs of deleted packs are never offered for reuse."""
        names = set(self.store.list(self.path("index") + "/"))
        if self._loaded - names:
            with self._lock:
                self.index.clear()
            self._loaded = set()
        for name in sorted(names - self._loaded):
            self.add_index(self.load_doc("index", name.rsplit("/", 1)[1], IndexDoc))
            self._loaded.add(name)

    def add_index(self, doc: IndexDoc) -> None:
        with self._lock:
            for pack in doc.packs:
                for b in pack.blobs:
                    self.index[bytes.fromhex(b.id)] = Location(
                        pack.pack, b.type, b.offset, b.length, b.raw_length, b.compressed
                    )

    def save_index(self, doc: IndexDoc, retain: Retain | None = None) -> None:
        """Store an index object and take its entries into the in-memory index."""
        name = self.path("index", self.save_doc("index", doc, retain))
        self.add_index(doc)
        with self._lock:
            self._loaded.add(name)

    # --- blobs --------------------------------------------------------------------------------
    def decode_blob(self, blob_id: bytes, location: Location, sealed: bytes | memoryview) -> bytes:
        what = f"blob {blob_id.hex()} in pack {location.pack}"
        payload = self.key.open(sealed, blob_id, what)
        if location.compressed:
            try:
                payload = decompressor().decompress(payload, max_output_size=location.raw_length)
            except zstandard.ZstdError as exc:
                raise CorruptObject(f"{what}: does not decompress ({exc})") from exc
        if len(payload) != location.raw_length or self.key.blob_id(payload) != blob_id:
            raise CorruptObject(f"{what}: content does not match its id")
        return payload

    def read_blob(self, blob_id: bytes) -> bytes:
        location = self.index.get(blob_id)
        if location is None:
            raise CorruptObject(f"blob {blob_id.hex()} is not in any index")
        sealed = self.store.get_range(
            self.pack_key(location.pack), location.offset, location.length
        )
        if len(sealed) != location.length:
            raise CorruptObject(f"pack {location.pack}: truncated at blob {blob_id.hex()}")
        return self.decode_blob(blob_id, location, sealed)

    def read_tree(self, tree_id: str) -> Tree:
        raw = self.read_blob(bytes.fromhex(tree_id))
        try:
            return Tree.model_validate_json(raw)
        except ValidationError as exc:
            raise CorruptObject(
                f"tree {tree_id}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}"
            ) from exc

    # --- snapshots ----------------------------------------------------------------------------
    def snapshots_doc(self, snapshot_id: str) -> SnapshotDoc:
        return self.load_doc("snapshots", snapshot_id, SnapshotDoc)

    def snapshots(self) -> dict[str, SnapshotDoc]:
        return {
            name.rsplit("/", 1)[1]: self.load_doc("snapshots", name.rsplit("/", 1)[1], SnapshotDoc)
            for name in self.store.list(self.path("snapshots") + "/")
        }

    def usable(self, blob_id: bytes) -> bool:
        location = self.index.get(blob_id)
        return location is not None and location.pack not in self.excluded_packs

    def has_all(self, ids: Iterable[str]) -> bool:
        return all(self.usable(bytes.fromhex(i)) for i in ids)


def json_compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
