"""Repository locks: what lets prune run while backups run.

A backup holds a `backup` lock for its whole run and refreshes it every minute. A prune
first writes a `prune` lock naming the packs it intends to delete ("doomed"), then waits
for every backup lock that existed at that moment to go away. Backups that start later
see the prune lock and never reuse a blob from a doomed pack; backups that started
earlier have finished, and their snapshots are counted before anything is deleted. The
argument needs no clocks: only the order "create own lock, then list the others' locks",
which both sides follow. A lock not refreshed for `STALE_AFTER` is ignored (its holder
died).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Literal

from services.mover.repo.errors import CorruptObject
from services.mover.repo.repository import Repository
from vessel.objectstore.lock import purge

STALE_AFTER = 30 * 60.0
REFRESH_EVERY = 60.0
Kind = Literal["backup", "prune"]
PROCESS = uuid.uuid4().hex
"""This process, in the locks it writes."""
OWNER = ""
"""Who this process is across restarts (a mover: `mover/<cluster>@<host>`, set at its
start); empty: a one-off process, such as `vessel-repo`."""


def set_owner(owner: str) -> None:
    global OWNER
    OWNER = owner


@dataclass
class LockDoc:
    id: str
    kind: Kind
    refreshed: float
    host: str = ""
    pid: int = 0
    doomed: list[str] = field(default_factory=list)
    owner: str = ""
    process: str = ""

    @property
    def stale(self) -> bool:
        return time.time() - self.refreshed > STALE_AFTER


def _key(repo: Repository, lock_id: str) -> str:
    return repo.path("locks", lock_id)


def _write(repo: Repository, doc: LockDoc) -> None:
    plain = json.dumps(doc.__dict__).encode()
    repo.store.put_bytes(_key(repo, doc.id), repo.key.seal(plain, b"locks"))


def all_locks(repo: Repository) -> list[LockDoc]:
    """Every lock, stale ones included."""
    found = []
    for name in repo.store.list(repo.path("locks") + "/"):
        try:
            plain = repo.key.open(repo.store.get_bytes(name), b"locks", name)
            found.append(LockDoc(**json.loads(plain)))
        except CorruptObject:
            continue  # unreadable locks are not ours to honour; check reports objects
        except Exception:
            continue  # released between list and get
    return found


def list_locks(repo: Repository) -> list[LockDoc]:
    """The locks to honour: those refreshed within `STALE_AFTER`."""
    return [lock for lock in all_locks(repo) if not lock.stale]


def describe(lock: LockDoc) -> dict[str, object]:
    """Who holds `lock` and since when it was last refreshed, as `check` and `prune` say."""
    return {
        "id": lock.id,
        "kind": lock.kind,
        "owner": f"{lock.owner or lock.host}:{lock.pid}",
        "age_seconds": round(time.time() - lock.refreshed, 1),
        "stale": lock.stale,
    }


def unlock(repo: Repository, *, everything: bool = False) -> list[str]:
    """Remove stale locks (their holder died), or with `everything` all of them (only when
    no mover or prune runs on the repository); returns the ids removed."""
    removed = []
    for lock in all_locks(repo):
        if everything or lock.stale:
            purge(repo.store, _key(repo, lock.id))
            removed.append(lock.id)
    return removed


class Held:
    """A lock this process holds, refreshed in the background until released."""

    def __init__(self, repo: Repository, kind: Kind, doomed: list[str] | None = None) -> None:
        self.repo = repo
        self.doc = LockDoc(
            uuid.uuid4().hex,
            kind,
            time.time(),
            socket.gethostname(),
            os.getpid(),
            doomed or [],
            OWNER,
            PROCESS,
        )
        _write(repo, self.doc)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh, daemon=True, name="lock-refresh")
        self._thread.start()

    def _refresh(self) -> None:
        while not self._stop.wait(REFRESH_EVERY):
            self.doc.refreshed = time.time()
            _write(self.repo, self.doc)

    def others(self) -> list[LockDoc]:
        return [lock for lock in list_locks(self.repo) if lock.id != self.doc.id]

    def release(self) -> None:
        self._stop.set()
        # Every refresh left a version in a versioned (lock-enabled) bucket: free them all.
        purge(self.repo.store, _key(self.repo, self.doc.id))


def clear_previous(repo: Repository) -> list[str]:
    """Remove the locks an earlier run of this owner left (it was killed holding them): a
    restarted mover must not make a prune wait half an hour for itself."""
    if not OWNER:
        return []
    removed = []
    for lock in all_locks(repo):
        if lock.owner == OWNER and lock.process != PROCESS:
            purge(repo.store, _key(repo, lock.id))
            removed.append(lock.id)
    return removed
