"""`ObjectStore` on a local directory: for single-machine repositories and benchmarks.

Writes go to a temporary file in the same directory and are renamed into place, so a
reader sees the old or the new object, never a mix, as with S3. A directory keeps no
versions and cannot lock: `locking()` is False and asking for a retention is refused.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from vessel.objectstore.base import (
    NULL_VERSION,
    LockUnsupported,
    ObjectNotFound,
    ObjectVersion,
    Retain,
    Versions,
    check_key,
)


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.bucket = str(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def ensure_bucket(self, object_lock: bool = False) -> None:
        if object_lock:
            raise self._no_lock()
        self.root.mkdir(parents=True, exist_ok=True)

    def _no_lock(self) -> LockUnsupported:
        return LockUnsupported(f"{self.bucket}: a local directory cannot lock objects")

    def _write(self, key: str, fill: object) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(fill, Path):
                    with fill.open("rb") as src:
                        shutil.copyfileobj(src, out, 1 << 20)
                else:
                    out.write(fill)  # type: ignore[arg-type]
                out.flush()
                os.fsync(out.fileno())  # durable before it becomes visible under its name
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes, retain: Retain | None = None) -> None:
        if retain is not None:
            raise self._no_lock()
        self._write(key, data)

    def put_file(self, key: str, path: Path, retain: Retain | None = None) -> None:
        if retain is not None:
            raise self._no_lock()
        self._write(key, path)

    def _missing(self, key: str) -> ObjectNotFound:
        return ObjectNotFound(f"{self.bucket}/{key}: not found")

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise self._missing(key) from None

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        try:
            with self._path(key).open("rb") as f:
                f.seek(offset)
                return f.read(length)
        except (FileNotFoundError, IsADirectoryError):
            raise self._missing(key) from None

    def get_file(self, key: str, path: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise self._missing(key)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        if not self.root.exists():
            return []
        keys = []
        for dirpath, _, files in os.walk(self.root):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                key = (Path(dirpath) / name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def locking(self) -> bool:
        return False

    def retention(self, key: str, version_id: str | None = None) -> Retain | None:
        if not self._path(key).is_file() or version_id not in (None, NULL_VERSION):
            raise self._missing(key)
        return None

    def extend_retention(self, key: str, retain: Retain) -> None:
        raise self._no_lock()

    def versions(self, prefix: str) -> Versions:
        return [
            ObjectVersion(
                key,
                NULL_VERSION,
                datetime.fromtimestamp(self._path(key).stat().st_mtime, UTC),
            )
            for key in self.list(prefix)
        ]

    def delete_version(self, key: str, version_id: str) -> None:
        if version_id == NULL_VERSION:
            self.delete(key)
