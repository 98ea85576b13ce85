"""Backup then restore reproduces a tree exactly, from a repository reopened from the store,
into an empty directory or over one that already holds conflicting entries."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from services.mover.repo.archiver import Archiver
from services.mover.repo.repository import Repository
from services.mover.volumes import RepositoryData
from tests.mover.fstree import MIB, OLD_NS, OWNER, RichTree, compare_trees, set_times
from tests.mover.repokit import PASSWORD, objects, reopen, restore_fresh
from vessel.objectstore.base import ObjectStore
from vessel.sealed.providers.password import PasswordKey


def test_full_fidelity_roundtrip(repo: Repository, rich_tree: RichTree, tmp_path: Path) -> None:
    source = rich_tree.root
    source.chmod(0o750)  # the volume's own directory: `rsync -a` keeps it, so must we
    os.utime(source, ns=(1_500_000_000_123_456_789, 1_500_000_000_123_456_789))
    snapshot_id, doc = Archiver(repo).backup(source, tags={"app": "shop"})
    assert len(objects(repo, "data")) > 5  # the tree spans many packs

    reopened = reopen(repo)
    assert reopened.snapshots()[snapshot_id].tags == {"app": "shop"}
    assert reopened.snapshots()[snapshot_id].tree == doc.tree
    target = tmp_path / "restored"
    restore_fresh(repo, snapshot_id, target)

    assert compare_trees(source, target, special_metadata=False) == []
    root = target.stat()
    assert (stat.S_IMODE(root.st_mode), root.st_mtime_ns) == (0o750, 1_500_000_000_123_456_789)
    sparse = (target / "sparse.img").stat()
    assert sparse.st_size == 20 * MIB
    assert sparse.st_blocks * 512 <= 1 * MIB
    medium = (target / "medium.bin").stat()
    assert medium.st_nlink == 3
    assert (target / "nested/a/hard-again.bin").stat().st_ino == medium.st_ino
    assert stat.S_ISFIFO((target / "pipe").lstat().st_mode)
    assert os.readlink(target / "dangling") == "no/such/target"
    assert (target / "ünïcødé 名前 🚀.txt").read_bytes() == "ünïcødé\n".encode()
    if os.geteuid() == 0:
        owned = (target / "owned.txt").stat()
        assert (owned.st_uid, owned.st_gid) == OWNER
    if rich_tree.xattrs:
        assert os.getxattr(target / "text.txt", "user.binary") == bytes(range(256))
        assert os.getxattr(target / "nested", "user.dir") == b"on a directory"


def _outside(tmp_path: Path) -> tuple[Path, Path]:
    outside_dir = tmp_path / "outside"
    outside_dir.mkdir()
    (outside_dir / "keep.txt").write_bytes(b"keep")
    outside_file = tmp_path / "outside.txt"
    outside_file.write_bytes(b"untouched")
    return outside_dir, outside_file


def test_restore_replaces_conflicting_entries(
    repo: Repository, rich_tree: RichTree, tmp_path: Path
) -> None:
    snapshot_id, _ = Archiver(repo).backup(rich_tree.root)
    outside_dir, outside_file = _outside(tmp_path)
    target = tmp_path / "target"
    target.mkdir()
    (target / "one.bin").mkdir()  # a directory where a file belongs
    (target / "one.bin/inner.txt").write_bytes(b"stale")
    (target / "nested").write_bytes(b"a file where a directory belongs")
    (target / "empty_dir").symlink_to(outside_dir)  # a link where a directory belongs
    (target / "text.txt").symlink_to(outside_file)  # a link where a file belongs
    (target / "medium.bin").write_bytes(b"old content")
    os.chmod(target / "medium.bin", 0o777)
    (target / "pipe").write_bytes(b"a file where a fifo belongs")
    (target / "rel_link").mkdir()  # a directory where a link belongs
    (target / "rel_link/x").write_bytes(b"x")
    (target / "readonly_dir").mkdir(0o555)
    (target / "readonly_dir/inside.txt").write_bytes(b"wrong")

    restore_fresh(repo, snapshot_id, target)

    assert compare_trees(rich_tree.root, target, special_metadata=False) == []
    assert sorted(p.name for p in outside_dir.iterdir()) == ["keep.txt"]
    assert (outside_dir / "keep.txt").read_bytes() == b"keep"
    assert outside_file.read_bytes() == b"untouched"


def test_restore_keeps_entries_the_snapshot_does_not_name(
    repo: Repository, rich_tree: RichTree, tmp_path: Path
) -> None:
    """Documented behaviour (restorer.py): a restore never deletes what it was not asked
    about; everything the snapshot names is exact."""
    snapshot_id, _ = Archiver(repo).backup(rich_tree.root)
    target = tmp_path / "target"
    (target / "nested/a").mkdir(parents=True)
    (target / "empty_dir").mkdir()
    (target / "stale.txt").write_bytes(b"stale")
    (target / "nested/a/stale.bin").write_bytes(b"stale")
    (target / "empty_dir/stale").write_bytes(b"stale")

    restore_fresh(repo, snapshot_id, target)

    assert compare_trees(rich_tree.root, target, special_metadata=False) == [
        "extra: empty_dir/stale",
        "extra: nested/a/stale.bin",
        "extra: stale.txt",
    ]
    assert (target / "stale.txt").read_bytes() == b"stale"


def test_fifo_metadata_roundtrip(repo: Repository, tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    os.mkfifo(source / "pipe")
    os.chmod(source / "pipe", 0o666)
    if os.geteuid() == 0:
        os.chown(source / "pipe", *OWNER)
    os.utime(source / "pipe", ns=(OLD_NS, OLD_NS))
    snapshot_id, _ = Archiver(repo).backup(source)

    target = tmp_path / "target"
    restore_fresh(repo, snapshot_id, target)

    assert stat.S_ISFIFO((target / "pipe").lstat().st_mode)
    assert compare_trees(source, target) == []


def test_names_that_are_not_utf8(repo: Repository, tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    latin1 = os.fsdecode(b"caf\xe9.txt")
    (source / latin1).write_bytes(b"latin-1 name")
    os.symlink(os.fsdecode(b"targ\xff"), source / "link")
    set_times(source)
    snapshot_id, _ = Archiver(repo).backup(source)

    target = tmp_path / "target"
    restore_fresh(repo, snapshot_id, target)

    assert compare_trees(source, target) == []
    assert os.fsencode(os.readlink(target / "link")) == b"targ\xff"


def test_volume_data_creates_the_repository_and_ignores_a_pruned_parent(
    store: ObjectStore, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    (source / "d").mkdir(parents=True)
    (source / "d/f.txt").write_bytes(b"volume content")
    data = RepositoryData(store, "volumes", PasswordKey(PASSWORD))
    snapshot_id, doc = data.backup(source, "0" * 64, {"claim": "data"}, None)
    assert doc.parent is None  # the named parent does not exist: a full backup
    assert store.exists(f"volumes/snapshots/{snapshot_id}")

    target = tmp_path / "target"
    stats = RepositoryData(store, "volumes", PasswordKey(PASSWORD)).restore(
        snapshot_id, target, None
    )
    assert (stats.files, stats.bytes) == (1, len(b"volume content"))
    assert compare_trees(source, target) == []
