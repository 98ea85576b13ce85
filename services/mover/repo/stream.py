"""The wire format of a direct transfer between two movers (`vessel.xfer/1`, see
docs/formats.md): session keys, replies, blob frames, and the walks both ends make.

Both repositories share the chunk-id key (they are made `like` each other), so it is the
secret both ends hold: the session key and the check value that proves it are derived
from it and a nonce the destination picks per session. The repositories' encryption keys
differ; a blob is opened with the source's key, travels sealed with the session key and
is sealed again with the destination's key by its pack writer.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import blake3
from pydantic import BaseModel, ConfigDict, Field

from services.mover.repo.errors import CorruptObject, RepositoryError
from services.mover.repo.repository import Repository, decompressor
from vessel.sealed.keys import MasterKey

PROTOCOL = "vessel.xfer/1"
FRAME_BYTES = 512 << 10
"""Half of NATS' default max_payload (1 MiB): room for headers, no server change needed."""
ID = 32
TYPES = ("data", "tree")
_PIECE = struct.Struct("<32sBBIIII")  # id, type, compressed, raw_length, total, offset, length
OK, FAILED = b"\x00", b"\x01"
MAX_TREE = 64 << 20
"""Trees are not chunked: a directory of many entries is one blob, held whole to verify."""


class TransferRefused(RepositoryError):
    """The other mover refused a step; the message says what was wrong."""


class NotLike(TransferRefused):
    """The destination repository was not made like the source: blob ids differ."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenRequest(_Wire):
    format: str = PROTOCOL
    transfer_id: str = Field(min_length=1, max_length=128)
    source_cluster: str = Field(min_length=1, max_length=63)
    target_bucket: str = Field(min_length=1, max_length=128)
    snapshot_id: str = Field(pattern=r"^[0-9a-f]{64}$")
    tree: str = Field(pattern=r"^[0-9a-f]{64}$")
    chunk_avg: int = Field(gt=0)


class OpenReply(_Wire):
    session: str = Field(pattern=r"^[0-9a-f]{32}$")
    nonce: str = Field(pattern=r"^[0-9a-f]{64}$")
    check: str = Field(pattern=r"^[0-9a-f]{64}$")
    chunk_avg: int = Field(gt=0)
    existing: str = Field("", description="A snapshot already copied from the same source")


def session_key(chunk_id: bytes, transfer_id: str, nonce: bytes) -> tuple[MasterKey, str]:
    """The session's sealing key (with the shared chunk-id key, to check blob ids) and the
    check value a destination answers with to prove it holds the same chunk-id key."""
    material = chunk_id + nonce + transfer_id.encode()
    key = blake3.blake3(material, derive_key_context=f"{PROTOCOL} session key").digest()
    check = blake3.blake3(material, derive_key_context=f"{PROTOCOL} key check").hexdigest()
    return MasterKey(key, chunk_id), check


def aad(transfer_id: str, verb: str) -> bytes:
    return f"{PROTOCOL} {transfer_id} {verb}".encode()


def ok(body: bytes = b"") -> bytes:
    return OK + body


def failed(message: str) -> bytes:
    return FAILED + message.encode()


def answer(reply: bytes, what: str) -> bytes:
    """The body of a successful reply; `TransferRefused` naming `what` otherwise."""
    if reply[:1] == OK:
        return reply[1:]
    if reply[:1] == FAILED:
        raise TransferRefused(f"{what}: {reply[1:].decode(errors='replace')}")
    raise TransferRefused(f"{what}: malformed reply ({len(reply)} bytes)")


# --- blob frames ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Piece:
    """A blob's payload (compressed as stored, if it was) or a fragment of it."""

    blob_id: bytes
    type: str
    compressed: bool
    raw_length: int
    total: int
    offset: int
    data: bytes


class FrameBuilder:
    """Cuts payloads into frames of at most `budget` bytes, splitting large blobs."""

    def __init__(self, budget: int = FRAME_BYTES) -> None:
        if budget <= _PIECE.size:
            raise ValueError(f"frame budget {budget} leaves no room for data")
        self.budget = budget
        self._parts: list[bytes] = []
        self._size = 0

    def add(
        self, blob_id: bytes, type_: str, payload: bytes, compressed: bool, raw_length: int
    ) -> Iterator[bytes]:
        """Frames that became full while adding this blob."""
        offset = 0
        while True:
            room = self.budget - self._size - _PIECE.size
            if room <= 0:
                yield self._emit()
                continue
            part = payload[offset : offset + room]
            head = _PIECE.pack(
                blob_id, TYPES.index(type_), compressed, raw_length, len(payload), offset, len(part)
            )
            self._parts += [head, part]
            self._size += len(head) + len(part)
            offset += len(part)
            if offset >= len(payload):
                return

    def _emit(self) -> bytes:
        frame, self._parts, self._size = b"".join(self._parts), [], 0
        return frame

    def finish(self) -> bytes | None:
        return self._emit() if self._parts else None


def pieces(frame: bytes) -> Iterator[Piece]:
    at = 0
    while at < len(frame):
        if at + _PIECE.size > len(frame):
            raise CorruptObject(f"blob frame: truncated piece header at byte {at}")
        blob_id, type_, compressed, raw, total, offset, length = _PIECE.unpack_from(frame, at)
        at += _PIECE.size
        if type_ >= len(TYPES) or compressed > 1 or at + length > len(frame):
            raise CorruptObject(f"blob frame: malformed piece of blob {blob_id.hex()}")
        if offset + length > total:
            raise CorruptObject(f"blob frame: piece of blob {blob_id.hex()} beyond its length")
        yield Piece(
            blob_id, TYPES[type_], bool(compressed), raw, total, offset, frame[at : at + length]
        )
        at += length


class Assembler:
    """Joins a blob's pieces (they arrive in order) and verifies the blob against its id."""

    def __init__(self, key: MasterKey, max_chunk: int) -> None:
        self.key = key
        self.limits = {"data": max_chunk, "tree": MAX_TREE}
        self._current: Piece | None = None
        self._buffer = bytearray()

    def feed(self, piece: Piece) -> tuple[bytes, str, bytes] | None:
        """(id, type, plaintext) once the blob is whole and verified."""
        what = f"blob {piece.blob_id.hex()}"
        limit = self.limits[piece.type]
        if piece.total > limit or piece.raw_length > limit:
            raise CorruptObject(
                f"{what}: {piece.raw_length} bytes exceeds {limit} for a {piece.type}"
            )
        if piece.offset == 0:
            self._current, self._buffer = piece, bytearray()
        current = self._current
        if current is None or current.blob_id != piece.blob_id or piece.offset != len(self._buffer):
            raise CorruptObject(f"{what}: piece at {piece.offset} arrived out of order")
        self._buffer += piece.data
        if len(self._buffer) < piece.total:
            return None
        self._current, data = None, bytes(self._buffer)
        self._buffer = bytearray()
        if piece.compressed:
            try:
                data = decompressor().decompress(data, max_output_size=piece.raw_length)
            except Exception as exc:
                raise CorruptObject(f"{what}: does not decompress ({exc})") from exc
        if len(data) != piece.raw_length or self.key.blob_id(data) != piece.blob_id:
            raise CorruptObject(f"{what}: content does not match its id")
        return piece.blob_id, piece.type, data


def bitmap(flags: list[bool]) -> bytes:
    out = bytearray((len(flags) + 7) // 8)
    for i, flag in enumerate(flags):
        if flag:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def flagged(bits: bytes, count: int) -> list[bool]:
    if len(bits) != (count + 7) // 8:
        raise CorruptObject(f"have reply: {len(bits)} bytes of flags for {count} blobs")
    return [bool(bits[i // 8] & (1 << (i % 8))) for i in range(count)]


def split_ids(body: bytes) -> list[bytes]:
    if len(body) % ID:
        raise CorruptObject(f"have request: {len(body)} bytes is not a list of blob ids")
    return [body[i : i + ID] for i in range(0, len(body), ID)]


# --- repository walks ---------------------------------------------------------------------
def read_payload(repo: Repository, blob_id: bytes) -> tuple[str, bytes, bool, int]:
    """A blob as stored (type, payload compressed or not, compressed, plaintext length),
    opened with the repository's key: it is not decompressed on the way."""
    location = repo.index.get(blob_id)
    if location is None:
        raise CorruptObject(f"blob {blob_id.hex()} is not in any index")
    sealed = repo.store.get_range(repo.pack_key(location.pack), location.offset, location.length)
    if len(sealed) != location.length:
        raise CorruptObject(f"pack {location.pack}: truncated at blob {blob_id.hex()}")
    payload = repo.key.open(sealed, blob_id, f"blob {blob_id.hex()} in pack {location.pack}")
    return location.type, payload, location.compressed, location.raw_length


def walk(repo: Repository, root: str) -> Iterator[tuple[bytes, str]]:
    """Every blob of a snapshot once per tree visit: a tree's chunks, then its subtrees,
    then the tree itself, so a tree never arrives before what it names."""
    seen: set[str] = set()
    stack: list[tuple[str, bool]] = [(root, False)]
    while stack:
        tree_id, done = stack.pop()
        if done:
            yield bytes.fromhex(tree_id), "tree"
            continue
        if tree_id in seen:
            continue
        seen.add(tree_id)
        stack.append((tree_id, True))
        for node in repo.read_tree(tree_id).nodes:
            for blob in node.content:
                yield bytes.fromhex(blob), "data"
            if node.subtree:
                stack.append((node.subtree, False))


def first_missing(repo: Repository, root: str) -> str | None:
    """The first blob of the snapshot tree `root` the repository cannot serve, if any."""
    try:
        for blob_id, type_ in walk(repo, root):
            if not repo.usable(blob_id):
                return f"{type_} blob {blob_id.hex()}"
    except CorruptObject as exc:
        return str(exc)
    return None
