"""Key rotation (vessel/sealed/rotation.py, `vessel-repo rotate-key`): the master key is
wrapped anew, from a password to a KMS key and from one KMS key to another, and no object
but the key files changes; the old key opens nothing afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.mover.repo.archiver import Archiver
from services.mover.repo.cli import main
from services.mover.repo.repository import Repository
from services.mover.repo.restorer import Restorer
from tests.mover.fstree import RichTree, compare_trees
from tests.mover.repokit import PASSWORD, PREFIX, new_repository
from tests.sealed.kmskit import Kms
from vessel.objectstore.base import ObjectStore
from vessel.objectstore.local import LocalStore
from vessel.sealed.documents import SealedStore
from vessel.sealed.errors import WrongPassword
from vessel.sealed.keys import open_master_key, write_key_file
from vessel.sealed.providers.password import PasswordKey
from vessel.sealed.rotation import rotate_key

RECORD = {"backup": "b1", "volumes": ["data"]}


def everything_but_keys(store: ObjectStore) -> dict[str, bytes]:
    """Every object's bytes, key files aside: what a rotation must leave alone."""
    return {key: store.get_bytes(key) for key in store.list("") if "/keys/" not in key}


def test_password_to_kms_rewrites_no_data(
    store: ObjectStore, rich_tree: RichTree, kms: Kms, tmp_path: Path
) -> None:
    repo = new_repository(store)
    snapshot_id, _ = Archiver(repo).backup(rich_tree.root)
    SealedStore(store, repo.key).put("backups/b1/backup.sealed", "backup", "b1", RECORD)
    before = everything_but_keys(store)
    assert any("/data/" in key for key in before)
    (old_file,) = store.list(f"{PREFIX}/keys/")

    kms_key = kms.provider(kms.new_key(), f"{store.bucket}/{PREFIX}")
    rotation = rotate_key(store, PREFIX, PasswordKey(PASSWORD), kms_key)

    assert rotation.removed == [old_file] and rotation.written is not None
    assert store.list(f"{PREFIX}/keys/") == [rotation.written]
    assert json.loads(store.get_bytes(rotation.written))["provider"] == "aws-kms"
    assert everything_but_keys(store) == before
    with pytest.raises(WrongPassword):
        Repository.open(store, PREFIX, PasswordKey(PASSWORD))
    with pytest.raises(WrongPassword):
        rotate_key(store, PREFIX, PasswordKey(PASSWORD), PasswordKey("again"))

    reopened = Repository.open(store, PREFIX, kms_key)
    target = tmp_path / "restored"
    Restorer(reopened).restore(snapshot_id, target)
    assert compare_trees(rich_tree.root, target, special_metadata=False) == []
    assert SealedStore(store, reopened.key).get("backups/b1/backup.sealed", "backup", "b1") == (
        RECORD
    )
    assert everything_but_keys(store) == before


def test_an_interrupted_rotation_is_finished_by_running_it_again(tmp_path: Path, kms: Kms) -> None:
    store = LocalStore(tmp_path / "bucket")
    store.ensure_bucket()
    repo = new_repository(store)
    kms_key = kms.provider(kms.new_key())
    # Stopped after the new key file was written, before the old one was deleted.
    new_file = write_key_file(store, PREFIX, kms_key, repo.key)
    assert len(store.list(f"{PREFIX}/keys/")) == 2

    rotation = rotate_key(store, PREFIX, PasswordKey(PASSWORD), kms_key)

    assert rotation.written is None and len(rotation.removed) == 1
    assert store.list(f"{PREFIX}/keys/") == [new_file]
    assert open_master_key(store, PREFIX, kms_key) == repo.key


def test_a_rotation_to_the_same_key_loses_nothing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "bucket")
    store.ensure_bucket()
    repo = new_repository(store)
    keys = store.list(f"{PREFIX}/keys/")
    rotation = rotate_key(store, PREFIX, PasswordKey(PASSWORD), PasswordKey(PASSWORD))
    assert (rotation.written, rotation.removed) == (None, [])
    assert store.list(f"{PREFIX}/keys/") == keys
    assert Repository.open(store, PREFIX, PasswordKey(PASSWORD)).key == repo.key


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else {}, err


def test_the_command_rotates_between_kms_keys(
    tmp_path: Path,
    kms: Kms,
    rich_tree: RichTree,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local = str(tmp_path / "bucket")
    monkeypatch.setenv("VESSEL_REPOSITORY_PASSWORD", PASSWORD)
    assert run(capsys, "--local", local, "init")[0] == 0
    code, backup, _ = run(capsys, "--local", local, "backup", str(rich_tree.root))
    assert code == 0
    first, second = kms.new_key(), kms.new_key()

    code, rotated, _ = run(capsys, "--local", local, "rotate-key", "--to", f"aws-kms:{first}")
    assert code == 0 and len(rotated["removed"]) == 1  # type: ignore[arg-type]
    code, rotated, _ = run(
        capsys,
        "--local",
        local,
        "--key",
        f"aws-kms:{first}",
        "rotate-key",
        "--to",
        f"aws-kms:{second}",
    )
    assert code == 0 and len(rotated["removed"]) == 1  # type: ignore[arg-type]

    for old in ("password", f"aws-kms:{first}"):
        code, _, err = run(capsys, "--local", local, "--key", old, "snapshots")
        assert code == 1 and "WrongPassword: no key of" in err
    code, snapshots, _ = run(capsys, "--local", local, "--key", f"aws-kms:{second}", "snapshots")
    assert code == 0 and list(snapshots) == [backup["snapshot"]]

    kms.disable(second)
    code, _, err = run(capsys, "--local", local, "--key", f"aws-kms:{second}", "snapshots")
    assert code == 1 and f"KeyUnavailable: KMS key {second}" in err and "Disabled" in err
