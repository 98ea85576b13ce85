"""Faults, with real processes: each service killed with SIGKILL in the middle of a backup,
and again in the middle of restoring that backup into the other cluster, then started again.

Every operation must end, and end Completed: a killed service's work is taken up again
(by its restarted self, once its messages are redelivered after `redelivery_seconds`, 3 s
here). Each restore is compared file by file with the source, and the repository is
checked with `vessel-repo check --read-data` at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.kit import (
    FINAL,
    all_ready,
    backup,
    final,
    kill,
    moving,
    repository_check,
    restore,
    restored_digest,
    row,
    service,
    state,
    until,
)
from vessel.api.v1 import vessel_pb2 as pb
from vessel_dev.rig.scenario import tree_digest
from vessel_dev.rig.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]
EXTRA_MIB = 40
"""Written anew into the app's volume before each backup, so that its transfer lasts long
enough to be cut in the middle."""


def in_progress(op: pb.Operation) -> bool:
    return op.phase == "InProgress"


# case: (killed during the backup, killed during the restore, when to kill)
CASES: dict[str, tuple[str, str, Callable[[pb.Operation], bool]]] = {
    "mover": ("mover-cluster-a", "mover-cluster-b", moving),
    "protection": ("protection", "protection", moving),
    "provisioner": ("provisioner-cluster-a", "provisioner-cluster-b", in_progress),
    "agent": ("discovery-cluster-a", "discovery-cluster-b", in_progress),
    "hub discovery": ("discovery", "discovery", in_progress),
    "gateway": ("gateway", "gateway", in_progress),
}


async def killed_during(
    stack: Stack, op_id: str, victim: str, when: Callable[[pb.Operation], bool]
) -> tuple[str, float]:
    """Kill `victim` once the operation is `when`, start it again a second later; where the
    operation was at the kill, and when that was."""
    at_kill = await until(stack, op_id, lambda o: when(o) or o.phase in FINAL, 60)
    assert at_kill.phase not in FINAL, f"{op_id} ended before {victim} could be killed"
    proc = service(stack, victim)
    kill(proc)
    killed_at = time.monotonic()
    await asyncio.sleep(1.0)
    proc.start()
    return state(at_kill), killed_at


@pytest.mark.parametrize("case", list(CASES))
async def test_a_service_killed_mid_backup_and_mid_restore(
    stack: Stack,
    source: Path,
    case: str,
    record_property: Callable[[str, object], None],
) -> None:
    during_backup, during_restore, when = CASES[case]
    slug = case.replace(" ", "-")
    # New data each time: a backup with nothing new to send ends before it can be cut.
    (source / "db" / "big.dat").write_bytes(os.urandom(EXTRA_MIB << 20))
    digest = tree_digest(source)

    backup_id = await asyncio.to_thread(backup, stack, f"backup-{slug}")
    backup_at, killed = await killed_during(stack, backup_id, during_backup, when)
    backed_up, took = await final(stack, backup_id, killed)
    assert backed_up.phase == "Completed", backed_up.message

    namespace = f"restored-{slug}"
    restore_id = await asyncio.to_thread(restore, stack, backed_up.backup_id, namespace)
    restore_at, killed = await killed_during(stack, restore_id, during_restore, when)
    restored, restore_took = await final(stack, restore_id, killed)
    same = restored.phase == "Completed" and await restored_digest(stack, namespace) == digest
    check = "restored byte-identical" if same else "RESTORE DIFFERS"
    row(record_property, f"kill -9 {during_backup}", backed_up, took, check, backup_at)
    row(record_property, f"kill -9 {during_restore}", restored, restore_took, check, restore_at)
    assert restored.phase == "Completed", restored.message
    assert same, f"the data restored into {namespace} differs from the source"
    await asyncio.to_thread(all_ready, stack)


def test_the_repository_is_sound_after_every_kill(stack: Stack, source: Path) -> None:
    checked = repository_check(stack)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert report["ok"] and report["errors"] == [], report
    assert report["snapshots"] == len(CASES) and report["bytes_read"] > EXTRA_MIB << 20, report
    assert report["locks"] == [], report  # a killed mover's locks went with its restart
