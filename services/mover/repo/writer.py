"""Writes blobs into packs and packs into the store, with bounded memory.

Thread-safe: worker threads call `add` concurrently. Compression and sealing happen in the
caller's thread (they release the GIL); only appending to the open pack takes the lock.
A full pack is uploaded by a small pool, followed by an index object naming only that
pack — so an interrupted backup leaves every uploaded pack indexed, and the next backup
finds and reuses its blobs instead of uploading them again. At most `uploads` finished
packs wait for the network at a time; producers block beyond that.

Under object lock, every pack and index object of one writer gets the retention fixed when
the writer is made (`retain`), which the snapshot naming them is then written with too.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

import zstandard

from services.mover.repo.format import BlobEntry, IndexDoc, PackEntry
from services.mover.repo.pack import PackBuilder
from services.mover.repo.repository import Repository

_local = threading.local()
INCOMPRESSIBLE = 0.97


def _compressor() -> zstandard.ZstdCompressor:
    if not hasattr(_local, "cctx"):
        _local.cctx = zstandard.ZstdCompressor(level=3)
    return _local.cctx  # type: ignore[no-any-return]


def compress(data: bytes | memoryview) -> tuple[bytes | memoryview, bool]:
    """zstd when it pays; a probe of the first 64 KiB saves compressing random data."""
    if len(data) > 256 << 10:
        probe = _compressor().compress(data[: 64 << 10])
        if len(probe) > INCOMPRESSIBLE * (64 << 10):
            return data, False
    packed = _compressor().compress(data)
    if len(packed) > INCOMPRESSIBLE * len(data):
        return data, False
    return packed, True


class BlobWriter:
    def __init__(self, repo: Repository, uploads: int = 2) -> None:
        self.repo = repo
        self._lock = threading.Lock()
        self._pending: set[bytes] = set()
        self._pack = PackBuilder(repo.key)
        self._slots = threading.BoundedSemaphore(uploads)
        self._pool = ThreadPoolExecutor(uploads, thread_name_prefix="upload")
        self._futures: list[Future[None]] = []
        self._futures_lock = threading.Lock()
        self.uploaded_bytes = 0
        self.new_blobs = 0
        self.retain = repo.retain()

    def add(self, blob_id: bytes, type_: str, data: bytes | memoryview) -> bool:
        """Store the blob unless the repository has it; True when it was new."""
        with self._lock:
            if blob_id in self._pending or self.repo.usable(blob_id):
                return False
            self._pending.add(blob_id)
        payload, compressed = compress(data)
        sealed_pack = None
        with self._lock:
            self._pack.add(blob_id, type_, payload, len(data), compressed)
            self.new_blobs += 1
            if self._pack.size >= self.repo.config.pack_size:
                sealed_pack, self._pack = self._pack, PackBuilder(self.repo.key)
        if sealed_pack is not None:
            self._upload(sealed_pack)
        return True

    def _upload(self, pack: PackBuilder) -> None:
        self._slots.acquire()
        with self._futures_lock:
            done = [f for f in self._futures if f.done()]
            for future in done:
                self._futures.remove(future)
            self._futures.append(self._pool.submit(self._store, pack))
        for future in done:
            future.result()  # an upload error surfaces in the producer

    def _store(self, pack: PackBuilder) -> None:
        try:
            pack_id, data, locations = pack.finish()
            self.repo.store.put_bytes(self.repo.pack_key(pack_id), data, self.retain)
            if self.retain is not None:
                self.repo.pack_until[pack_id] = self.retain.until
            entries = [
                BlobEntry(
                    id=i,
                    type=loc.type,
                    offset=loc.offset,
                    length=loc.length,
                    raw_length=loc.raw_length,
                    compressed=loc.compressed,
                )
                for i, loc in locations.items()
            ]
            # The index object expires with its pack, never later: a prune that may delete
            # the pack may then delete every index object naming it (maintenance.py).
            self.repo.save_index(
                IndexDoc(packs=[PackEntry(pack=pack_id, blobs=entries)]), self.retain
            )
            with self._lock:
                self._pending.difference_update(bytes.fromhex(i) for i in locations)
                self.uploaded_bytes += len(data)
        finally:
            self._slots.release()

    def flush(self) -> None:
        """Upload the open pack and wait for every upload: afterwards all blobs are stored."""
        with self._lock:
            pack, self._pack = self._pack, PackBuilder(self.repo.key)
        if len(pack):
            self._upload(pack)
        with self._futures_lock:
            futures, self._futures = self._futures, []
        for future in futures:
            future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
