"""Documents Vessel keeps in a bucket beside the repository (backup records, resource
archives), sealed under the bucket's master key and bound to what they are.

A sealed document is `0x01 || nonce(12) || AES-256-GCM(zstd(JSON)) || tag(16)` under the
document key, derived from the master key's encryption key with BLAKE3 in key-derivation
mode (context `vessel.document/1 key`), so documents and repository objects never share
a key. The associated data is `vessel.document/1 <role> <owner>`, the owner being the
backup or app snapshot the document belongs to: a document moved to another backup or
read in another role fails authentication, like any change to its bytes.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import blake3
import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vessel.objectstore.base import ObjectStore, Retain
from vessel.sealed.errors import CorruptObject, UnknownFormat
from vessel.sealed.keys import (
    NONCE,
    OVERHEAD,
    SEAL_VERSION,
    KeyProvider,
    MasterKey,
    open_master_key,
    write_key_file,
)

CONTEXT = "vessel.document/1"
MAX_DOCUMENT = 256 << 20
"""Largest document a reader decompresses: far above any app's resources, and a bound
on what a forged document can make a reader allocate."""


class DocumentKey:
    def __init__(self, master: MasterKey) -> None:
        self._aead = AESGCM(
            blake3.blake3(master.encryption, derive_key_context=f"{CONTEXT} key").digest()
        )

    @staticmethod
    def _associated(role: str, owner: str) -> bytes:
        if not role or not owner or " " in role or " " in owner:
            raise ValueError(f"document role {role!r} and owner {owner!r} must be single words")
        return f"{CONTEXT} {role} {owner}".encode()

    def seal(self, role: str, owner: str, document: Any) -> bytes:
        plain = zstandard.ZstdCompressor(level=3).compress(
            json.dumps(document, separators=(",", ":")).encode()
        )
        nonce = os.urandom(NONCE)
        return (
            bytes([SEAL_VERSION])
            + nonce
            + self._aead.encrypt(nonce, plain, self._associated(role, owner))
        )

    def open(self, role: str, owner: str, sealed: bytes, name: str) -> Any:
        """The document's JSON value; `name` (the object's key) is for errors."""
        if len(sealed) < OVERHEAD:
            raise CorruptObject(f"{name}: truncated ({len(sealed)} bytes)")
        if sealed[0] != SEAL_VERSION:
            raise UnknownFormat(f"{name}: unknown encryption version {sealed[0]}")
        try:
            plain = self._aead.decrypt(
                sealed[1 : 1 + NONCE], sealed[1 + NONCE :], self._associated(role, owner)
            )
        except InvalidTag:
            raise CorruptObject(
                f"{name}: authentication failed: modified, damaged, sealed with another key, "
                f"or not the {role} document of {owner}"
            ) from None
        try:
            text = zstandard.ZstdDecompressor().decompress(plain, max_output_size=MAX_DOCUMENT)
            return json.loads(text)
        except (zstandard.ZstdError, ValueError) as exc:
            raise CorruptObject(f"{name}: authenticated but unreadable ({exc})") from exc


def digest(sealed: bytes) -> str:
    """What a document that refers to a sealed one records of it (64 hex)."""
    return blake3.blake3(sealed).hexdigest()


class SealedStore:
    """A bucket and the master key of what Vessel seals in it."""

    def __init__(self, store: ObjectStore, master: MasterKey) -> None:
        self.store = store
        self.master = master
        self.documents = DocumentKey(master)

    def put(
        self, name: str, role: str, owner: str, document: Any, retain: Retain | None = None
    ) -> str:
        """Seal and store a document (`retain`: as `ObjectStore.put_bytes`); the digest of
        what was stored."""
        sealed = self.documents.seal(role, owner, document)
        self.store.put_bytes(name, sealed, retain)
        return digest(sealed)

    def get(self, name: str, role: str, owner: str, expect_digest: str | None = None) -> Any:
        sealed = self.store.get_bytes(name)
        if expect_digest is not None and digest(sealed) != expect_digest:
            raise CorruptObject(
                f"{name}: not the document its backup record names (replaced or rolled back)"
            )
        return self.documents.open(role, owner, sealed, name)

    def get_with_digest(self, name: str, role: str, owner: str) -> tuple[Any, str]:
        """The document, and the digest of its stored bytes (for a record naming it)."""
        sealed = self.store.get_bytes(name)
        return self.documents.open(role, owner, sealed, name), digest(sealed)


@dataclass
class KeyCache:
    """Master keys by (bucket name, generation): opening one costs a key derivation
    (scrypt, ~0.1 s), so each is opened once per process and bucket generation."""

    _keys: dict[tuple[str, object], MasterKey] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def master_key(
        self,
        name: str,
        generation: object,
        store: ObjectStore,
        prefix: str,
        provider: KeyProvider,
        like: MasterKey | None = None,
    ) -> MasterKey:
        with self._lock:
            cached = self._keys.get((name, generation))
            if cached is None:
                cached = open_or_create_master_key(store, prefix, provider, like)
                self._keys = {k: v for k, v in self._keys.items() if k[0] != name}
                self._keys[(name, generation)] = cached
            return cached


def open_or_create_master_key(
    store: ObjectStore, prefix: str, provider: KeyProvider, like: MasterKey | None = None
) -> MasterKey:
    """The bucket's master key under `<prefix>/keys/`, created when there is none yet
    (sharing `like`'s chunk-id key, as `Repository.init(like=...)` does).

    Protection seals documents before the mover first stores volume data, so either may
    create the key; the mover's repository adopts a key it finds (`Repository.init`).
    Callers in one process serialize on `KeyCache`; two processes creating the first key
    of one bucket at the same instant is not guarded against (docs/formats.md).
    """
    prefix = prefix.strip("/")
    if not store.list(f"{prefix}/keys/"):
        store.ensure_bucket()
        key = MasterKey.generate()
        if like is not None:
            key = MasterKey(key.encryption, like.chunk_id)
        write_key_file(store, prefix, provider, key)
        return key
    return open_master_key(store, prefix, provider)
