"""Undoing deletions and overwrites in a lock-enabled bucket.

Vessel writes every object once and never replaces it (the repository's `locks/` aside),
so after someone holding the bucket's write keys deleted objects (delete markers) or
overwrote them (newer versions), each object's oldest version is the one Vessel wrote.
`recover` makes it current again by deleting the later versions and delete markers.
Locked versions survived whatever was done; unlocked ones only if nobody deleted their
versions too.

Key files are the exception: rotation deletes the old ones on purpose, and a rotated-away
file still opens the master key with the old password or key. A key file whose newest
entry is a delete marker therefore stays deleted while any key file is current; only when
none is (the bucket would not open) do they all come back, and the report names them, so
the operator can rotate again.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from vessel.objectstore.base import ObjectLocked, ObjectStore, ObjectVersion


@dataclass
class Recovery:
    restored: list[str] = field(default_factory=list)
    """Keys whose oldest version is current again."""
    removed_versions: int = 0
    left_deleted_key_files: list[str] = field(default_factory=list)
    """Deleted key files left deleted (another key file is current)."""
    restored_key_files: list[str] = field(default_factory=list)
    """Deleted key files brought back, because no key file was current."""
    unrecoverable: list[str] = field(default_factory=list)
    """Keys with a later version that is itself locked: they stay as they are."""


def recover(
    store: ObjectStore, prefixes: list[str], key_files: str, skip: tuple[str, ...] = ()
) -> Recovery:
    """Make the oldest version of every object under `prefixes` current again, except
    keys starting with `skip`; `key_files` is the prefix of the key files."""
    report = Recovery()
    by_key: dict[str, list[ObjectVersion]] = defaultdict(list)
    for prefix in prefixes:
        for version in store.versions(prefix):
            by_key[version.key].append(version)
    keys_current = any(
        not versions[-1].delete_marker
        for key, versions in by_key.items()
        if key.startswith(key_files)
    )
    for key, versions in sorted(by_key.items()):
        real = [v for v in versions if not v.delete_marker]
        if key.startswith(skip) or not real or versions[-1] is real[0]:
            continue
        later = versions[versions.index(real[0]) + 1 :]
        if key.startswith(key_files) and versions[-1].delete_marker:
            if keys_current:
                report.left_deleted_key_files.append(key)
                continue
            report.restored_key_files.append(key)
        try:
            for version in reversed(later):
                store.delete_version(key, version.version_id)
                report.removed_versions += 1
        except ObjectLocked:
            report.unrecoverable.append(key)
            continue
        report.restored.append(key)
    return report
