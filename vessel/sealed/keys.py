"""The master key of a bucket and the providers that wrap it.

The master key (two random 32-byte keys: AES-256-GCM encryption and keyed-BLAKE3 chunk
ids) is stored wrapped by a key derived from the password with scrypt. Every sealed
object is `version(1) || nonce(12) || AES-GCM(ciphertext || tag)` with associated data
that binds it to its role (a blob's id, "index", "snapshot"...), so objects cannot be
swapped or re-purposed without detection.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Protocol

import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vessel.objectstore.base import ObjectStore
from vessel.sealed.errors import CorruptObject, SealError, UnknownFormat, WrongPassword

SEAL_VERSION = 1
NONCE = 12
OVERHEAD = 1 + NONCE + 16
SCRYPT = {"n": 2**15, "r": 8, "p": 1}


class MasterKey:
    def __init__(self, encryption: bytes, chunk_id: bytes) -> None:
        if len(encryption) != 32 or len(chunk_id) != 32:
            raise CorruptObject("key: master keys must be 32 bytes each")
        self.encryption = encryption
        self.chunk_id = chunk_id
        self._aead = AESGCM(encryption)

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(os.urandom(32), os.urandom(32))

    def blob_id(self, data: bytes | memoryview) -> bytes:
        return blake3.blake3(data, key=self.chunk_id).digest()

    def seal(self, plaintext: bytes | memoryview, associated: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return bytes([SEAL_VERSION]) + nonce + self._aead.encrypt(nonce, plaintext, associated)

    def open(self, sealed: bytes | memoryview, associated: bytes, what: str) -> bytes:
        if len(sealed) < OVERHEAD:
            raise CorruptObject(f"{what}: truncated ({len(sealed)} bytes)")
        if sealed[0] != SEAL_VERSION:
            raise UnknownFormat(f"{what}: unknown encryption version {sealed[0]}")
        try:
            return self._aead.decrypt(bytes(sealed[1 : 1 + NONCE]), sealed[1 + NONCE :], associated)
        except InvalidTag:
            raise CorruptObject(f"{what}: authentication failed (modified or corrupted)") from None


class KeyProvider(Protocol):
    """Where the key that wraps the master key comes from.

    `wrap` returns a JSON document holding the master key sealed under the provider's key,
    with a `format` naming the provider; it may be called many times (each call may give a
    different document). `unwrap` returns the master key, or raises `WrongPassword` when
    the document is the provider's kind but its key does not open it, `UnknownFormat` when
    it is another provider's document, `CorruptObject` when it is damaged.
    """

    def wrap(self, master: MasterKey) -> dict[str, object]: ...
    def unwrap(self, document: dict[str, object]) -> MasterKey: ...


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class PasswordKey:
    def __init__(self, password: str) -> None:
        if not password:
            raise ValueError("the repository password must not be empty")
        self.password = password.encode()

    def _kek(self, salt: bytes, n: int, r: int, p: int) -> AESGCM:
        derived = hashlib.scrypt(
            self.password, salt=salt, n=n, r=r, p=p, maxmem=128 << 20, dklen=32
        )
        return AESGCM(derived)

    def wrap(self, master: MasterKey) -> dict[str, object]:
        salt, nonce = os.urandom(16), os.urandom(NONCE)
        secret = json.dumps(
            {"encryption": _b64(master.encryption), "chunk_id": _b64(master.chunk_id)}
        )
        sealed = self._kek(salt, **SCRYPT).encrypt(nonce, secret.encode(), b"vessel-key")
        return {
            "format": "vessel.key/1",
            "kdf": "scrypt",
            **SCRYPT,
            "salt": _b64(salt),
            "nonce": _b64(nonce),
            "data": _b64(sealed),
        }

    def unwrap(self, document: dict[str, object]) -> MasterKey:
        if document.get("format") != "vessel.key/1" or document.get("kdf") != "scrypt":
            raise UnknownFormat(f"key: unknown format {document.get('format')!r}")
        try:
            params = {k: int(document[k]) for k in ("n", "r", "p")}  # type: ignore[call-overload]
            salt, nonce, data = (
                base64.b64decode(str(document[k])) for k in ("salt", "nonce", "data")
            )
        except (KeyError, ValueError) as exc:
            raise CorruptObject(f"key: malformed ({exc})") from exc
        try:
            secret = json.loads(self._kek(salt, **params).decrypt(nonce, data, b"vessel-key"))
        except InvalidTag:
            raise WrongPassword("wrong repository password") from None
        return MasterKey(
            base64.b64decode(secret["encryption"]), base64.b64decode(secret["chunk_id"])
        )


def write_key_file(store: ObjectStore, prefix: str, provider: KeyProvider, key: MasterKey) -> str:
    """Store `key` wrapped by `provider` under `<prefix>/keys/`; the object's name."""
    document = json.dumps(provider.wrap(key)).encode()
    name = f"{prefix}/keys/{blake3.blake3(document).hexdigest()}"
    store.put_bytes(name, document)
    return name


def open_master_key(store: ObjectStore, prefix: str, provider: KeyProvider) -> MasterKey:
    """The master key from the first key file under `<prefix>/keys/` that `provider`
    opens. Key files of other providers or damaged ones are skipped and named in the
    error when none opens."""
    unreadable: list[str] = []
    for name in store.list(f"{prefix}/keys/"):
        try:
            document = json.loads(store.get_bytes(name))
            if not isinstance(document, dict):
                raise ValueError("not a JSON object")
            return provider.unwrap(document)
        except WrongPassword:
            continue
        except (ValueError, SealError) as exc:
            unreadable.append(f"{name} ({exc})")
    skipped = f"; unreadable key files: {', '.join(unreadable)}" if unreadable else ""
    raise WrongPassword(f"no key of {store.bucket}/{prefix} opens with this password{skipped}")
