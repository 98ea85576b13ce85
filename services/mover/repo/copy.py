"""Copy a snapshot from one repository into another, moving only the blobs the
destination lacks (direct transfer between clusters' repositories).

Both repositories must share the chunk-id key and chunker (`Repository.init(like=...)`),
so a blob has the same id in both: the destination's index answers "do I have it"
without seeing the data. Blobs are authenticated when read from the source and sealed
with the destination's own encryption key. The snapshot is written last, as for a backup.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.mover.repo.errors import RepositoryError
from services.mover.repo.locks import Held
from services.mover.repo.repository import Repository
from services.mover.repo.retention import save_snapshot
from services.mover.repo.writer import BlobWriter


class IncompatibleRepositories(RepositoryError):
    pass


@dataclass
class CopyStats:
    blobs: int = 0
    copied_blobs: int = 0
    copied_bytes: int = 0


def copy_snapshot(
    source: Repository, target: Repository, snapshot_id: str
) -> tuple[str, CopyStats]:
    if (
        source.key.chunk_id != target.key.chunk_id
        or source.config.chunk_avg != target.config.chunk_avg
    ):
        raise IncompatibleRepositories(
            f"{target.store.bucket}/{target.prefix} was not created like "
            f"{source.store.bucket}/{source.prefix}: blob ids differ, so the whole snapshot "
            "would have to be read (create the destination with init --like)"
        )
    doc = source.snapshots_doc(snapshot_id)
    stats = CopyStats()
    lock = Held(target, "backup")  # a copy adds data like a backup: prune must respect it
    target.load_index()
    target.excluded_packs = {p for o in lock.others() if o.kind == "prune" for p in o.doomed}
    writer = BlobWriter(target)
    try:
        stack = [doc.tree]
        while stack:
            tree_id = stack.pop()
            tree = source.read_tree(tree_id)
            for node in tree.nodes:
                if node.subtree:
                    stack.append(node.subtree)
                for blob in node.content:
                    _copy_blob(source, writer, bytes.fromhex(blob), "data", stats)
            _copy_blob(source, writer, bytes.fromhex(tree_id), "tree", stats)
        writer.flush()
        copied = doc.model_copy(update={"tags": {**doc.tags, "copied_from": snapshot_id}})
        return save_snapshot(target, copied, writer.retain), stats
    finally:
        writer.close()
        lock.release()


def _copy_blob(
    source: Repository, writer: BlobWriter, blob_id: bytes, type_: str, stats: CopyStats
) -> None:
    stats.blobs += 1
    if writer.repo.usable(blob_id):
        return
    data = source.read_blob(blob_id)
    if writer.add(blob_id, type_, data):
        stats.copied_blobs += 1
        stats.copied_bytes += len(data)
