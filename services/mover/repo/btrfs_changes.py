"""Changed paths between two read-only btrfs snapshots, from `btrfs send --no-data`.

`btrfs send -p PARENT SNAPSHOT --no-data` emits a metadata-only stream of every change
(created, deleted, renamed, linked, chmod/chown/utimes, extent updates), and
`btrfs receive --dump` prints it one command a line. Restic has to stat every file to
learn the same; here the cost is proportional to what changed. The btrfs-progs CLI is
the supported interface to send streams; no maintained Python binding parses them.
"""

from __future__ import annotations

import re
import signal
import stat
import subprocess
from pathlib import Path, PurePosixPath

_TOKEN = re.compile(r"(?:\\.|\S)+")
_ESCAPE = re.compile(r"\\(\\|[0-7]{3}|.)")


class ChangeTrackingUnavailable(Exception):
    """The two paths are not a parent/child pair of read-only btrfs snapshots."""


def _unescape(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        token = match.group(1)
        if len(token) == 3 and token.isdigit():
            return chr(int(token, 8))
        return {"n": "\n", "t": "\t", "r": "\r", "v": "\v", "f": "\f"}.get(token, token)

    return _ESCAPE.sub(one, text)


def _relative(raw: str, root: str) -> str:
    """Paths of commands are `./<snapshot>/...`; link targets are relative to the root."""
    parts = PurePosixPath(_unescape(raw)).parts
    if raw.startswith("./"):
        parts = parts[2:] if parts[:2] == (".", root) else parts[1:]
    return "/".join(parts)


def changed_paths(parent: Path, snapshot: Path) -> set[str]:
    """Paths (relative, `/`-separated; "" is the root) that differ between the two.
    ChangeTrackingUnavailable unless both are snapshots of the same subvolume: btrfs sends
    a stream against any parent, but against an unrelated one equal inode numbers would
    make changed files look unchanged."""
    origins = {_origin(parent), _origin(snapshot)}
    if len(origins) != 1 or "" in origins:
        raise ChangeTrackingUnavailable(
            f"{parent} and {snapshot} are not snapshots of the same subvolume"
        )
    # Send needs both snapshots committed (their received/parent UUID lookups read the
    # committed UUID tree); a snapshot taken a moment ago may not be yet.
    subprocess.run(["btrfs", "filesystem", "sync", str(snapshot)], capture_output=True, check=False)
    send = subprocess.Popen(
        ["btrfs", "send", "-q", "--no-data", "-p", str(parent), str(snapshot)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    dump = subprocess.run(
        ["btrfs", "receive", "--dump"],
        stdin=send.stdout,
        capture_output=True,
        text=True,
        check=False,
    )
    assert send.stdout is not None
    send.stdout.close()
    _, err = send.communicate()
    # `receive --dump` exits 0 only once it has read the stream's end command; send may
    # still be writing then and die of SIGPIPE. That stream was whole: not a failure.
    sent = send.returncode == 0 or (send.returncode == -signal.SIGPIPE and dump.returncode == 0)
    if not sent or dump.returncode != 0:
        raise ChangeTrackingUnavailable(
            f"btrfs send -p {parent} {snapshot} (exit {send.returncode}, dump exit "
            f"{dump.returncode}): {err.decode(errors='replace').strip()}{dump.stderr.strip()}"
        )
    changed: set[str] = set()
    root = ""
    for line in dump.stdout.splitlines():
        tokens = _TOKEN.findall(line)
        if len(tokens) < 2:
            continue
        command, target = tokens[0], tokens[1]
        if command == "snapshot":
            root = PurePosixPath(_unescape(target)).name
            continue
        for raw in [target] + [t[5:] for t in tokens[2:] if t.startswith("dest=")]:
            changed.add(_relative(raw, root).strip("/"))
    return changed | _other_names(snapshot, changed)


def _origin(snapshot: Path) -> str:
    """The UUID of the subvolume `snapshot` was taken of ("" when unknown)."""
    shown = subprocess.run(
        ["btrfs", "subvolume", "show", str(snapshot)], capture_output=True, text=True, check=False
    )
    for line in shown.stdout.splitlines():
        name, _, value = line.strip().partition(":")
        if name == "Parent UUID":
            return value.strip() if value.strip() != "-" else ""
    return ""


def _other_names(snapshot: Path, changed: set[str]) -> set[str]:
    """Every name of a changed inode with several names: the stream names only one."""
    names: set[str] = set()
    for path in changed:
        try:
            st = (snapshot / path).lstat()
        except OSError:
            continue  # deleted since: nothing to re-read
        if not stat.S_ISREG(st.st_mode) or st.st_nlink < 2:
            continue
        done = subprocess.run(
            ["btrfs", "inspect-internal", "inode-resolve", str(st.st_ino), str(snapshot)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ChangeTrackingUnavailable(f"inode-resolve {st.st_ino}: {done.stderr.strip()}")
        prefix = f"{snapshot}/"
        for line in done.stdout.splitlines():
            if line.startswith(prefix):
                names.add(line[len(prefix) :])
    return names


def dirty_directories(changed: set[str]) -> set[str]:
    """Every directory whose listing must be rebuilt: the ancestors of changed paths."""
    dirty = {""}
    for path in changed:
        parts = path.split("/")
        for depth in range(len(parts)):
            dirty.add("/".join(parts[:depth]))
    return dirty
