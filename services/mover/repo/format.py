"""The documents of the repository format `vessel.repo/1` (see docs/formats.md).

Everything read back from the bucket is validated by these models before use.
"""

from __future__ import annotations

import base64
import os
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

FORMAT = "vessel.repo/1"
HEX_ID = r"^[0-9a-f]{64}$"
NodeType = Literal["file", "dir", "symlink", "fifo", "chardev", "blockdev", "socket"]
BlobType = Literal["data", "tree"]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RepoConfig(_Doc):
    format: Literal["vessel.repo/1"]
    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    chunk_min: int = Field(gt=0)
    chunk_avg: int = Field(gt=0)
    chunk_max: int = Field(gt=0)
    pack_size: int = Field(gt=0)
    created: datetime


class BlobEntry(_Doc):
    id: str = Field(pattern=HEX_ID)
    type: BlobType
    offset: int = Field(ge=0)
    length: int = Field(gt=0, description="Sealed length in the pack")
    raw_length: int = Field(ge=0, description="Plaintext length")
    compressed: bool


class PackEntry(_Doc):
    pack: str = Field(pattern=HEX_ID)
    blobs: list[BlobEntry]


class IndexDoc(_Doc):
    format: Literal["vessel.index/1"] = "vessel.index/1"
    packs: list[PackEntry]


class Node(_Doc):
    name: str = Field(min_length=1, max_length=255)
    type: NodeType
    mode: int = Field(ge=0, le=0o7777)
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    atime_ns: int = 0
    ctime_ns: int = 0
    size: int = Field(0, ge=0)
    inode: int = 0
    links: int = 1
    device: int = 0
    rdev: int = 0
    content: list[str] = Field(default_factory=list)
    subtree: str | None = None
    tree_files: int = Field(0, ge=0, description="Directories: files in the whole subtree")
    tree_bytes: int = Field(0, ge=0, description="Directories: bytes in the whole subtree")
    target: str | None = None
    sparse: bool = False
    xattrs: dict[str, str] = Field(default_factory=dict, description="name -> base64 value")
    name_raw: str | None = Field(None, description="base64 of a name that is not UTF-8")
    target_raw: str | None = Field(None, description="base64 of a link target not UTF-8")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if name in (".", "..") or "/" in name or "\x00" in name:
            raise ValueError(f"unsafe file name {name!r}")
        return name

    @field_validator("name_raw")
    @classmethod
    def _plain_raw_name(cls, raw: str | None) -> str | None:
        if raw is not None:
            name = base64.b64decode(raw, validate=True)
            if name in (b"", b".", b"..") or b"/" in name or b"\x00" in name or len(name) > 255:
                raise ValueError(f"unsafe file name {name!r}")
        return raw

    @property
    def fs_name(self) -> str:
        """The name on the filesystem (bytes that are not UTF-8 survive as in os.listdir)."""
        return os.fsdecode(base64.b64decode(self.name_raw)) if self.name_raw else self.name

    @property
    def fs_target(self) -> str:
        if self.target_raw:
            return os.fsdecode(base64.b64decode(self.target_raw))
        return self.target or ""


class Tree(_Doc):
    nodes: list[Node]

    @field_validator("nodes")
    @classmethod
    def _unique_names(cls, nodes: list[Node]) -> list[Node]:
        names = [n.fs_name for n in nodes]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"duplicate names in one directory: {dupes[:5]}")
        return nodes


class RootMeta(_Doc):
    """The backed-up directory's own metadata (its entries are in the snapshot's tree)."""

    mode: int = Field(ge=0, le=0o7777)
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    xattrs: dict[str, str] = Field(default_factory=dict, description="name -> base64 value")

    @property
    def atime_ns(self) -> int:
        return 0  # not recorded (see Node); a restore sets atime to mtime


class SnapshotDoc(_Doc):
    format: Literal["vessel.snapshot/1"] = "vessel.snapshot/1"
    time: datetime
    tree: str = Field(pattern=HEX_ID)
    root: RootMeta | None = Field(None, description="Absent in snapshots of earlier versions")
    parent: str | None = None
    hostname: str = ""
    source: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    files: int = 0
    bytes: int = 0
