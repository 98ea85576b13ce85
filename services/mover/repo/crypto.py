"""Keys and authenticated encryption.

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

from services.mover.repo.errors import CorruptObject, UnknownFormat, WrongPassword

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
    """Where the key that wraps the master key comes from (a password today, a KMS later)."""

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
