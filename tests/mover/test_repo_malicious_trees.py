"""Snapshots crafted by someone who holds the key cannot make a restore write outside its
target (docs/formats.md, threat model)."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any

import pytest

from services.mover.repo.errors import CorruptObject, RepositoryError
from services.mover.repo.repository import Repository
from tests.mover.repokit import Crafter, file_node, restore_fresh

PAYLOAD = b"payload that must stay inside the target"


@pytest.fixture
def jail(tmp_path: Path) -> Path:
    """A directory holding only the restore target, so an escape is visible."""
    (tmp_path / "jail").mkdir()
    return tmp_path / "jail"


@pytest.mark.parametrize(
    ("name", "kind"),
    [("../evil", "file"), ("..", "dir"), ("a/b", "file"), ("", "file"), ("nul\x00", "file")],
)
def test_unsafe_names_are_rejected_before_anything_is_written(
    repo: Repository, jail: Path, name: str, kind: str
) -> None:
    crafter = Crafter(repo)
    blob = crafter.data(PAYLOAD)
    evil: dict[str, Any] = file_node(name, [blob], len(PAYLOAD))
    if kind == "dir":
        evil = {
            "name": name,
            "type": "dir",
            "mode": 0o755,
            "subtree": crafter.tree([file_node("evil", [blob], len(PAYLOAD))]),
        }
    root = crafter.tree([file_node("ok.txt", [blob], len(PAYLOAD)), evil])
    snapshot_id = crafter.snapshot(root)
    target = jail / "target"

    with pytest.raises(CorruptObject, match=f"tree {root}"):
        restore_fresh(repo, snapshot_id, target)

    assert [p.name for p in jail.iterdir()] == ["target"]
    assert list(target.iterdir()) == []


def _same_name_nodes(crafter: Crafter, outside: Path, order: str) -> list[dict[str, Any]]:
    blob = crafter.data(PAYLOAD)
    link = {"name": "link", "type": "symlink", "mode": 0o777, "target": str(outside)}
    directory = {
        "name": "link",
        "type": "dir",
        "mode": 0o755,
        "subtree": crafter.tree([file_node("payload", [blob], len(PAYLOAD))]),
    }
    file = file_node("link", [blob], len(PAYLOAD))
    return {
        "link-then-dir": [link, directory],
        "dir-then-link": [directory, link],
        "link-then-file": [link, file],
        "file-then-link": [file, link],
    }[order]


@pytest.mark.parametrize("where", ["target", "new-subdirectory"])
@pytest.mark.parametrize(
    "order", ["link-then-dir", "dir-then-link", "link-then-file", "file-then-link"]
)
def test_link_and_entry_of_the_same_name_never_write_outside(
    repo: Repository, tmp_path: Path, order: str, where: str
) -> None:
    area = tmp_path / "area"  # holds only the outside directory and the target
    outside = area / f"outside-{uuid.uuid4().hex[:8]}"
    outside.mkdir(parents=True)
    crafter = Crafter(repo)
    nodes = _same_name_nodes(crafter, outside, order)
    if where == "new-subdirectory":
        nodes = [{"name": "sub", "type": "dir", "mode": 0o755, "subtree": crafter.tree(nodes)}]
    snapshot_id = crafter.snapshot(crafter.tree(nodes))
    target = area / "target"

    with contextlib.suppress(RepositoryError, OSError):
        restore_fresh(repo, snapshot_id, target, workers=4)

    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in area.iterdir()) == sorted([outside.name, "target"])


def test_duplicate_names_are_rejected_as_corrupt(repo: Repository, tmp_path: Path) -> None:
    crafter = Crafter(repo)
    outside = tmp_path / "outside"
    outside.mkdir()
    snapshot_id = crafter.snapshot(
        crafter.tree(_same_name_nodes(crafter, outside, "link-then-file"))
    )
    with pytest.raises(RepositoryError):
        restore_fresh(repo, snapshot_id, tmp_path / "target")


def test_links_already_in_the_target_are_replaced_not_followed(
    repo: Repository, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_bytes(b"untouched")
    crafter = Crafter(repo)
    blob = crafter.data(PAYLOAD)
    sub = crafter.tree([file_node("payload", [blob], len(PAYLOAD))])
    snapshot_id = crafter.snapshot(
        crafter.tree(
            [
                {"name": "dir", "type": "dir", "mode": 0o755, "subtree": sub},
                file_node("file", [blob], len(PAYLOAD)),
            ]
        )
    )
    target = tmp_path / "target"
    target.mkdir()
    (target / "dir").symlink_to(outside)
    (target / "file").symlink_to(outside / "victim.txt")

    restore_fresh(repo, snapshot_id, target, workers=4)

    assert not (target / "dir").is_symlink() and not (target / "file").is_symlink()
    assert (target / "dir/payload").read_bytes() == PAYLOAD
    assert (target / "file").read_bytes() == PAYLOAD
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    assert (outside / "victim.txt").read_bytes() == b"untouched"


@pytest.mark.parametrize("subtree", [None, "0" * 64])
def test_directory_without_a_stored_subtree(
    repo: Repository, tmp_path: Path, subtree: str | None
) -> None:
    crafter = Crafter(repo)
    snapshot_id = crafter.snapshot(
        crafter.tree([{"name": "d", "type": "dir", "mode": 0o755, "subtree": subtree}])
    )
    with pytest.raises(RepositoryError, match="no subtree" if subtree is None else subtree):
        restore_fresh(repo, snapshot_id, tmp_path / "target")
