"""A restore's resource use does not grow with the size of the tree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from services.mover.repo.archiver import Archiver
from tests.mover.fstree import compare_trees, set_times
from tests.mover.repokit import PASSWORD, PREFIX, new_repository
from vessel.objectstore.local import LocalStore

ROOT = Path(__file__).resolve().parents[2]
RESTORE = """
import resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
from vessel.sealed.providers.password import PasswordKey
from services.mover.repo.repository import Repository
from services.mover.repo.restorer import Restorer
from vessel.objectstore.local import LocalStore
store, prefix, password, snapshot, target = sys.argv[1:]
repo = Repository.open(LocalStore(Path(store)), prefix, PasswordKey(password))
Restorer(repo).restore(snapshot, Path(target))
"""


def test_restore_of_more_directories_than_open_files_allowed(tmp_path: Path) -> None:
    source = tmp_path / "source"
    for i in range(400):
        (source / f"d{i:03d}").mkdir(parents=True)
        (source / f"d{i:03d}" / "f.txt").write_bytes(f"{i}\n".encode())
    set_times(source)
    store = LocalStore(tmp_path / "bucket")
    snapshot_id, _ = Archiver(new_repository(store)).backup(source)
    target = tmp_path / "target"

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            RESTORE,
            str(store.root),
            PREFIX,
            PASSWORD,
            snapshot_id,
            str(target),
        ],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr[-600:]
    assert compare_trees(source, target) == []
