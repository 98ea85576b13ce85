"""Descriptors of a restore's directories: opened one level at a time from their parent
with O_NOFOLLOW (so no symbolic link can redirect a write), kept in a bounded LRU so a
tree with more directories than the process may open still restores. A descriptor in use
is pinned and never closed under its user."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


class DirectoryHandles:
    def __init__(self, root: str | os.PathLike[str], limit: int = 256) -> None:
        self.limit = max(limit, 8)
        self._entries: list[tuple[int, str]] = [(-1, "")]
        self._fds: OrderedDict[int, int] = OrderedDict({0: os.open(root, DIR_FLAGS)})
        self._pins: dict[int, int] = {0: 1}  # the root is never closed
        self._lock = threading.RLock()

    def add(self, parent: int, name: str) -> int:
        with self._lock:
            self._entries.append((parent, name))
            return len(self._entries) - 1

    @contextmanager
    def open(self, index: int) -> Iterator[int]:
        with self._lock:
            fd = self._fds.get(index)
            if fd is None:
                parent, name = self._entries[index]
                with self.open(parent) as parent_fd:
                    fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
                self._fds[index] = fd
            self._fds.move_to_end(index)
            self._pins[index] = self._pins.get(index, 0) + 1
            self._evict()
        try:
            yield fd
        finally:
            with self._lock:
                self._pins[index] -= 1

    def _evict(self) -> None:
        for index in list(self._fds):
            if len(self._fds) <= self.limit:
                return
            if self._pins.get(index, 0) == 0:
                os.close(self._fds.pop(index))

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
