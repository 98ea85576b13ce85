"""A btrfs filesystem on a loop-mounted sparse image (needs root and btrfs-progs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from vessel_dev.rig.processes import MissingComponent


def btrfs_available() -> str | None:
    """None when a loop-mounted btrfs can be made here, else why not."""
    if os.geteuid() != 0:
        return "not running as root"
    for tool in ("mkfs.btrfs", "btrfs", "mount", "umount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install btrfs-progs)"
    return None


@dataclass
class LoopBtrfs:
    image: Path
    mountpoint: Path
    size_bytes: int = 1 << 30
    mounted: bool = False

    def start(self) -> None:
        reason = btrfs_available()
        if reason:
            raise MissingComponent(f"btrfs loop filesystem: {reason}")
        self.image.parent.mkdir(parents=True, exist_ok=True)
        with self.image.open("wb") as f:
            f.truncate(self.size_bytes)
        subprocess.run(["mkfs.btrfs", "-q", "-f", str(self.image)], check=True, capture_output=True)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        # `-o loop` attaches the device with autoclear: unmounting detaches it.
        subprocess.run(
            ["mount", "-o", "loop", str(self.image), str(self.mountpoint)],
            check=True,
            capture_output=True,
        )
        self.mounted = True

    def stop(self) -> None:
        if not self.mounted:
            return
        for _ in range(20):
            done = subprocess.run(["umount", str(self.mountpoint)], capture_output=True)
            if done.returncode == 0:
                break
            time.sleep(0.25)
        else:
            subprocess.run(["umount", "-l", str(self.mountpoint)], capture_output=True)
        self.mounted = False
        self.image.unlink(missing_ok=True)
