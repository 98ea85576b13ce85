"""The mover's data path behind `DataRepository`, and its first, simple implementation.

Contract of `DataRepository`:
- `backup(source, prefix)` stores every file under `source` and returns the manifest key;
  the manifest is written last, so its presence means every object it names is stored.
  Repeating a backup with the same prefix is safe (objects are replaced whole).
- `restore(manifest_key, target)` writes the tree into `target`, verifying each file's
  SHA-256 before it takes its final name, and never writes outside `target`.
- Errors: `CorruptData` (permanent: a checksum or manifest is wrong), `UnsafePath`
  (permanent: the manifest tries to escape the target), object-store errors as raised by
  the store (`StoreUnavailable` is temporary).

`SimpleRepository` stores each file once per content hash under the prefix. Chunking,
cross-backup de-duplication and encryption come with the real repository format.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vessel.objectstore.base import ObjectStore

FORMAT = "vessel.simple/1"


class CorruptData(Exception):
    pass


class UnsafePath(Exception):
    pass


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1)
    type: Literal["file", "dir", "symlink"]
    mode: int = Field(ge=0, le=0o7777)
    size: int = Field(0, ge=0)
    sha256: str = Field("", pattern=r"^([0-9a-f]{64})?$")
    target: str = ""

    @model_validator(mode="after")
    def _complete(self) -> Entry:
        if self.type == "file" and not self.sha256:
            raise ValueError(f"file {self.path!r} has no sha256")
        if self.type == "symlink" and not self.target:
            raise ValueError(f"symlink {self.path!r} has no target")
        return self


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["vessel.simple/1"]
    entries: list[Entry]

    @property
    def bytes(self) -> int:
        return sum(e.size for e in self.entries)


class DataRepository(Protocol):
    def backup(self, source: Path, prefix: str) -> tuple[str, Manifest]: ...
    def restore(self, manifest_key: str, target: Path) -> Manifest: ...


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def safe_relative(path: str) -> PurePosixPath:
    rel = PurePosixPath(path)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts or "\x00" in path:
        raise UnsafePath(f"manifest path {path!r} is not a plain relative path")
    return rel


class SimpleRepository:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def backup(self, source: Path, prefix: str) -> tuple[str, Manifest]:
        entries: list[Entry] = []
        stored: set[str] = set()
        for dirpath, dirnames, filenames in os.walk(source):
            dirnames.sort()
            base = Path(dirpath)
            for name in sorted(dirnames) + sorted(filenames):
                full = base / name
                rel = full.relative_to(source).as_posix()
                st = full.lstat()
                mode = stat.S_IMODE(st.st_mode)
                if stat.S_ISLNK(st.st_mode):
                    entries.append(
                        Entry(path=rel, type="symlink", mode=mode, target=os.readlink(full))
                    )
                elif stat.S_ISDIR(st.st_mode):
                    entries.append(Entry(path=rel, type="dir", mode=mode))
                elif stat.S_ISREG(st.st_mode):
                    digest = _digest(full)
                    if digest not in stored:
                        self.store.put_file(f"{prefix}/data/{digest}", full)
                        stored.add(digest)
                    entries.append(
                        Entry(path=rel, type="file", mode=mode, size=st.st_size, sha256=digest)
                    )
        manifest = Manifest(format=FORMAT, entries=entries)
        key = f"{prefix}/manifest.json"
        self.store.put_bytes(key, manifest.model_dump_json().encode())
        return key, manifest

    def restore(self, manifest_key: str, target: Path) -> Manifest:
        prefix = manifest_key.rsplit("/", 1)[0]
        try:
            manifest = Manifest.model_validate_json(self.store.get_bytes(manifest_key))
        except ValidationError as exc:
            raise CorruptData(
                f"{manifest_key}: invalid manifest: {exc.error_count()} errors, "
                f"first: {exc.errors()[0]['msg']}"
            ) from exc
        root = target.resolve()
        for entry in manifest.entries:
            dest = root / safe_relative(entry.path)
            self._check_inside(root, dest.parent)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if entry.type == "dir":
                if dest.is_symlink():
                    dest.unlink()  # the manifest says directory: never chmod through a link
                dest.mkdir(exist_ok=True)
                dest.chmod(entry.mode)
            elif entry.type == "file":
                self._restore_file(prefix, entry, dest)
        for entry in manifest.entries:  # links last: nothing is ever written through one
            if entry.type == "symlink":
                dest = root / safe_relative(entry.path)
                self._check_inside(root, dest.parent)
                if dest.is_symlink() or dest.exists():
                    dest.unlink()
                dest.symlink_to(entry.target)
        return manifest

    @staticmethod
    def _check_inside(root: Path, directory: Path) -> None:
        resolved = directory.resolve()
        if resolved != root and root not in resolved.parents:
            raise UnsafePath(f"{directory} resolves outside the target {root}")

    def _restore_file(self, prefix: str, entry: Entry, dest: Path) -> None:
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".vessel-restore-")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            self.store.get_file(f"{prefix}/data/{entry.sha256}", tmp)
            if _digest(tmp) != entry.sha256:
                raise CorruptData(
                    f"{prefix}/data/{entry.sha256}: content does not match its SHA-256"
                )
            tmp.chmod(entry.mode)
            tmp.replace(dest)
        finally:
            tmp.unlink(missing_ok=True)
