"""Key rotation: the master key wrapped anew, by another provider, password or KMS key.

Nothing sealed under the master key changes (repository data, indexes, snapshots, sealed
documents): only `<prefix>/keys/`. The order keeps the bucket openable at every step: the
new key file is written and opened back before any old one is deleted, so a rotation
stopped half-way leaves both keys working, and running it again finishes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from vessel.objectstore.base import ObjectLocked, ObjectStore
from vessel.objectstore.lock import purge
from vessel.sealed.errors import CorruptObject
from vessel.sealed.keys import (
    KeyProvider,
    key_files_opened_by,
    open_master_key,
    read_key_file,
    write_key_file,
)


@dataclass
class Rotation:
    written: str | None
    """The new key file; None when one the new provider opens was already there."""
    removed: list[str] = field(default_factory=list)
    """The key files the old provider opened, deleted."""
    locked: dict[str, datetime] = field(default_factory=dict)
    """Of `removed`, those under object lock: hidden behind a delete marker, their locked
    version (still opened by the old provider) stays until the date."""


def rotate_key(store: ObjectStore, prefix: str, old: KeyProvider, new: KeyProvider) -> Rotation:
    """Re-wrap the master key of `<prefix>` from `old` to `new`, then delete every key
    file `old` opens. Raises what `open_master_key` raises when `old` opens nothing, and
    `CorruptObject` (deleting nothing) when the new key file does not open back."""
    prefix = prefix.strip("/")
    master = open_master_key(store, prefix, old)
    # A rotation stopped after writing the new file is finished, not repeated: a key file
    # the new provider opens already is as good as a fresh one.
    present = [name for name, key in key_files_opened_by(store, prefix, new) if key == master]
    written = None
    if not present:
        written = write_key_file(store, prefix, new, master)
        if new.unwrap(read_key_file(store, written)) != master:
            store.delete(written)
            raise CorruptObject(
                f"{written}: the new key file does not open back to the master key; "
                "nothing was deleted"
            )
        present = [written]
    # Never a file the new provider opens: with old and new the same, nothing is lost.
    removed = [
        name
        for name, key in key_files_opened_by(store, prefix, old)
        if key == master and name not in present
    ]
    locked = {}
    for name in removed:
        try:
            purge(store, name)
        except ObjectLocked as exc:
            store.delete(name)
            locked[name] = exc.until
    return Rotation(written, removed, locked)
