"""The master key of a bucket, the `KeyProvider` contract that wraps it, and key files.

The master key (two random 32-byte keys: AES-256-GCM encryption and keyed-BLAKE3 chunk
ids) is stored wrapped by a key provider (vessel/sealed/providers/: a password, a
Kubernetes Secret, AWS KMS) in `<prefix>/keys/<id>` key files. Every sealed object is
`version(1) || nonce(12) || AES-GCM(ciphertext || tag)` with associated data that binds it
to its role (a blob's id, "index", "snapshot"...), so objects cannot be swapped or
re-purposed without detection.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterator
from typing import Protocol

import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vessel.objectstore.base import ObjectStore
from vessel.sealed.errors import (
    CorruptObject,
    KeyUnavailable,
    SealError,
    UnknownFormat,
    WrongPassword,
)

SEAL_VERSION = 1
NONCE = 12
OVERHEAD = 1 + NONCE + 16
KEY_FORMAT = "vessel.key/1"


class MasterKey:
    def __init__(self, encryption: bytes, chunk_id: bytes) -> None:
        if len(encryption) != 32 or len(chunk_id) != 32:
            raise CorruptObject("key: master keys must be 32 bytes each")
        self.encryption = encryption
        self.chunk_id = chunk_id
        self._aead = AESGCM(encryption)

    def __repr__(self) -> str:
        return "MasterKey(<hidden>)"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, MasterKey)
            and self.encryption == other.encryption
            and self.chunk_id == other.chunk_id
        )

    __hash__ = None  # type: ignore[assignment]

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
    """Where the key that wraps the master key comes from. The contract every provider
    keeps (tests/sealed/test_key_providers.py holds each to it):

    - `wrap(master)` returns a JSON document (a key file) holding the master key sealed
      under the provider's key, with `format` `vessel.key/1` and the `provider` that made
      it; nothing in it is key material in plaintext. It may be called many times: each
      call gives a different document, and every one of them opens.
    - `unwrap(document)` returns the master key, and has no effect on the key source; it
      raises
      - `WrongPassword`: the document is this provider's kind but its key does not open
        it (another password, another KMS key, another Secret's key, another bucket);
      - `UnknownFormat`: the document is another provider's (or an unknown format);
      - `CorruptObject`: the document is damaged (malformed, a field changed);
      - `KeyUnavailable`: the key source cannot be reached or refuses (a KMS key
        disabled, pending deletion, gone or denied; a Secret missing), naming the key.
      `wrap` raises `KeyUnavailable` alike.
    - `describe()` names the key for messages and logs (a KMS key id, a Secret's
      namespace/name/key, "this password"), never its material.
    """

    def wrap(self, master: MasterKey) -> dict[str, object]: ...
    def unwrap(self, document: dict[str, object]) -> MasterKey: ...
    def describe(self) -> str: ...


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(document: dict[str, object], field: str) -> bytes:
    try:
        return base64.b64decode(str(document[field]), validate=True)
    except (KeyError, binascii.Error) as exc:
        raise CorruptObject(f"key: malformed field {field!r} ({exc})") from exc


def master_payload(master: MasterKey) -> bytes:
    """What every provider seals: the master key as JSON (the password format's own)."""
    return json.dumps(
        {"encryption": b64(master.encryption), "chunk_id": b64(master.chunk_id)}
    ).encode()


def master_from_payload(payload: bytes) -> MasterKey:
    try:
        secret = json.loads(payload)
        return MasterKey(
            base64.b64decode(secret["encryption"]), base64.b64decode(secret["chunk_id"])
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptObject(f"key: authenticated but unreadable ({exc})") from exc


def _checksum(document: dict[str, object]) -> str:
    body = {k: v for k, v in document.items() if k != "check"}
    return blake3.blake3(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]


def with_check(document: dict[str, object]) -> dict[str, object]:
    """`document` with a checksum of its fields: a damaged key file is then told apart
    from one sealed under another key, which a KMS cannot tell (both fail to decrypt)."""
    return {**document, "check": _checksum(document)}


def verify_check(document: dict[str, object], required: bool = True) -> None:
    """Raise `CorruptObject` when the checksum is wrong, or missing where `required`
    (key files written before checksums, by the password provider, have none)."""
    if "check" not in document and not required:
        return
    if document.get("check") != _checksum(document):
        raise CorruptObject("key: damaged (its checksum does not match its fields)")


def of_provider(document: dict[str, object], provider: str) -> None:
    """Raise `UnknownFormat` unless `document` is a key file of `provider`."""
    if document.get("format") != KEY_FORMAT or document.get("provider") != provider:
        raise UnknownFormat(
            f"key: not a {provider} key file (format {document.get('format')!r}, "
            f"provider {document.get('provider', document.get('kdf'))!r})"
        )


def write_key_file(store: ObjectStore, prefix: str, provider: KeyProvider, key: MasterKey) -> str:
    """Store `key` wrapped by `provider` under `<prefix>/keys/`; the object's name."""
    document = json.dumps(provider.wrap(key)).encode()
    name = f"{prefix}/keys/{blake3.blake3(document).hexdigest()}"
    store.put_bytes(name, document)
    return name


def read_key_file(store: ObjectStore, name: str) -> dict[str, object]:
    try:
        document = json.loads(store.get_bytes(name))
    except ValueError as exc:
        raise CorruptObject(f"{name}: not JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise CorruptObject(f"{name}: not a JSON object")
    return document


def _open_each(
    store: ObjectStore, prefix: str, provider: KeyProvider, unreadable: list[str]
) -> Iterator[tuple[str, MasterKey]]:
    """(name, master key) of each key file `provider` opens, lazily: each one may cost a
    KMS request. Damaged and foreign files are added to `unreadable` with why; files of
    the provider's kind that its key does not open are skipped; `KeyUnavailable` (the key
    source refuses) is raised at once, since no other file would open either."""
    for name in store.list(f"{prefix}/keys/"):
        try:
            yield name, provider.unwrap(read_key_file(store, name))
        except KeyUnavailable:  # before SealError, which would count it as unreadable
            raise
        except WrongPassword:
            continue
        except SealError as exc:
            unreadable.append(f"{name} ({exc})")


def _none_opens(
    store: ObjectStore, prefix: str, provider: KeyProvider, unreadable: list[str]
) -> str:
    skipped = f"; unreadable key files: {', '.join(unreadable)}" if unreadable else ""
    return f"no key of {store.bucket}/{prefix} opens with {provider.describe()}{skipped}"


def open_master_key(store: ObjectStore, prefix: str, provider: KeyProvider) -> MasterKey:
    """The master key from the first key file under `<prefix>/keys/` that `provider`
    opens. Key files of other providers or damaged ones are skipped and named in the
    error (`WrongPassword`) when none opens."""
    unreadable: list[str] = []
    for _, key in _open_each(store, prefix, provider, unreadable):
        return key
    raise WrongPassword(_none_opens(store, prefix, provider, unreadable))


def key_files_opened_by(
    store: ObjectStore, prefix: str, provider: KeyProvider
) -> list[tuple[str, MasterKey]]:
    """Every key file under `<prefix>/keys/` that `provider` opens, with its master key."""
    return list(_open_each(store, prefix, provider, []))
