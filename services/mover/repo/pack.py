"""Pack files: sealed blobs back to back, then a sealed header listing them, then the
header's length (4 bytes, little endian). The pack id is the BLAKE3 hash of the whole
pack, so `check --read-data` verifies a pack without the key, and a lost index can be
rebuilt from pack headers alone."""

from __future__ import annotations

import json
import struct
from typing import NamedTuple

import blake3
import zstandard

from services.mover.repo.errors import CorruptObject
from services.mover.repo.format import BlobEntry
from vessel.sealed.keys import MasterKey

HEADER_AAD = b"vessel-pack-header"


class Location(NamedTuple):
    pack: str
    type: str
    offset: int
    length: int
    raw_length: int
    compressed: bool


class PackBuilder:
    def __init__(self, key: MasterKey) -> None:
        self.key = key
        self.parts: list[bytes] = []
        self.size = 0
        self.entries: list[tuple[str, str, int, int, int, bool]] = []

    def __len__(self) -> int:
        return len(self.entries)

    def add(
        self,
        blob_id: bytes,
        type_: str,
        payload: bytes | memoryview,
        raw_length: int,
        compressed: bool,
    ) -> None:
        sealed = self.key.seal(payload, blob_id)
        self.entries.append((blob_id.hex(), type_, self.size, len(sealed), raw_length, compressed))
        self.parts.append(sealed)
        self.size += len(sealed)

    def finish(self) -> tuple[str, bytes, dict[str, Location]]:
        header = zstandard.ZstdCompressor(level=3).compress(
            json.dumps(self.entries, separators=(",", ":")).encode()
        )
        sealed = self.key.seal(header, HEADER_AAD)
        data = b"".join([*self.parts, sealed, struct.pack("<I", len(sealed))])
        pack_id = blake3.blake3(data, max_threads=1).hexdigest()
        locations = {e[0]: Location(pack_id, e[1], e[2], e[3], e[4], e[5]) for e in self.entries}
        return pack_id, data, locations


def read_header(key: MasterKey, pack_id: str, data: bytes) -> list[BlobEntry]:
    """The blobs of a whole pack, from its own header (for index repair and checks)."""
    what = f"pack {pack_id}"
    if len(data) < 4:
        raise CorruptObject(f"{what}: truncated")
    (length,) = struct.unpack("<I", data[-4:])
    if length + 4 > len(data):
        raise CorruptObject(f"{what}: header length {length} exceeds the pack")
    header = key.open(data[-4 - length : -4], HEADER_AAD, f"{what} header")
    try:
        rows = json.loads(zstandard.ZstdDecompressor().decompress(header, max_output_size=1 << 28))
        return [
            BlobEntry(
                id=r[0], type=r[1], offset=r[2], length=r[3], raw_length=r[4], compressed=r[5]
            )
            for r in rows
        ]
    except (ValueError, TypeError, IndexError, zstandard.ZstdError) as exc:
        raise CorruptObject(f"{what}: malformed header ({exc})") from exc
