"""Import: a claim annotated `vessel.io/import-volume: <backend>/<path>` adopts that
directory or subvolume without copying; volumes already managed are refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

from services.provisioner.adapters.dirfs import DirBackend
from tests.provisioner.lab import Lab

IMPORT = "vessel.io/import-volume"
MiB = 1 << 20


async def test_a_directory_is_adopted_without_copying(lab: Lab, dir_backend: DirBackend) -> None:
    await lab.start()
    sc = await lab.storage_class("imp", reclaimPolicy="Retain")
    legacy = dir_backend.root / "legacy" / "app-data"
    legacy.mkdir(parents=True)
    (legacy / "db.bin").write_bytes(os.urandom(4096))
    inode = (legacy / "db.bin").stat().st_ino
    await lab.claim("adopted", sc, "64Mi", annotations={IMPORT: "local/legacy/app-data"})
    _, pv = await lab.bound("adopted")
    path = Path(pv["spec"]["hostPath"]["path"])
    assert path == dir_backend.root / pv["metadata"]["name"]
    assert (path / "db.bin").stat().st_ino == inode  # moved, not copied
    assert not legacy.exists()
    info = dir_backend.get_volume(pv["metadata"]["name"])
    assert info is not None and info.size_bytes == 64 * MiB
    [imported] = await lab.wait_published("volume.imported")
    assert imported["source"] == "local/legacy/app-data" and imported["claim"] == "adopted"
    await lab.wait_published("volume.provisioned")

    # The same source again: already managed.
    await lab.claim("again", sc, "64Mi", annotations={IMPORT: "local/legacy/app-data"})
    message = await lab.wait_reason("again", "ImportFailed")
    assert "already managed" in message and "default/adopted" in message
    # A managed volume by its own name: refused too.
    volume = pv["metadata"]["name"]
    await lab.claim("steal", sc, "64Mi", annotations={IMPORT: f"local/{volume}"})
    message = await lab.wait_reason("steal", "ImportFailed")
    assert f"volume {volume} of claim default/adopted" in message


async def test_a_btrfs_subvolume_is_adopted(btrfs_lab: Lab) -> None:
    await btrfs_lab.start()
    [backend] = btrfs_lab.backends
    root = Path(getattr(backend, "root"))  # noqa: B009 (not in the protocol)
    source = root / "incoming" / "old-app"  # names right under the root are volume names
    source.parent.mkdir()
    create = ["btrfs", "subvolume", "create", str(source)]
    await asyncio.to_thread(subprocess.run, create, check=True, capture_output=True)
    (source / "table").write_bytes(os.urandom(1 << 16))
    inode = (source / "table").stat().st_ino
    sc = await btrfs_lab.storage_class("bimp")
    await btrfs_lab.claim("old", sc, "32Mi", annotations={IMPORT: "fast/incoming/old-app"})
    _, pv = await btrfs_lab.bound("old")
    path = Path(pv["spec"]["hostPath"]["path"])
    assert (path / "table").stat().st_ino == inode
    info = backend.get_volume(pv["metadata"]["name"])
    assert info is not None and info.size_bytes == 32 * MiB  # the quota is the claim's size
    await btrfs_lab.wait_published("volume.imported")


async def test_bad_imports_are_events_naming_why(lab: Lab, dir_backend: DirBackend) -> None:
    await lab.start()
    sc = await lab.storage_class("badimp")
    await lab.claim("no-backend", sc, annotations={IMPORT: "elsewhere/data"})
    message = await lab.wait_reason("no-backend", "ImportFailed")
    assert "backend 'elsewhere' is not configured" in message and "local" in message
    await lab.claim("no-path", sc, annotations={IMPORT: "local/absent"})
    message = await lab.wait_reason("no-path", "ImportFailed")
    assert "absent" in message and "not a directory" in message
    big = dir_backend.root / "big"
    big.mkdir()
    (big / "blob").write_bytes(os.urandom(2 * MiB))
    await lab.claim("too-small", sc, "1Mi", annotations={IMPORT: "local/big"})
    message = await lab.wait_reason("too-small", "ImportFailed")
    assert "more than the 1048576 bytes" in message
    assert big.exists()
