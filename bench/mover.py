"""Mover benchmark: Vessel's repository against restic, borg and `cp -r` on the same data.

Run: `.venv/bin/python bench/mover.py [--gib 1] [--small 20000] [--deep 50000] [--rss-gib 4]`
(needs `restic` and `borg` on PATH; Debian: `restic`, `borgbackup`). Every tool runs as a
subprocess on the same generated data in this one invocation: 16 x 64 MiB random files
per GiB; many 1-16 KiB files (~60% text) in flat directories; and a deep tree of 0-4 KiB
files (a tenth empty, half text) five directory levels deep, as source trees, mail spools
and caches are. The repositories are local directories (CPU and disk path); the network
path backs up to a SeaweedFS S3 server against raw `put_object` of the same files, and
times a backup's documents sealed against plaintext (`bench/sealing.py`). Ends with one
JSON line per metric.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mover_direct import direct_transfer_seconds  # noqa: E402
from bench.sealing import documents_seconds  # noqa: E402
from vessel.objectstore.minio_port import MinioStore  # noqa: E402
from vessel_dev.rig.processes import S3Server  # noqa: E402

PASSWORD = "bench-password"
SEALED_APP_OBJECTS = 500
REPEAT = 2
OUTPUT = Path(tempfile.gettempdir()) / f"vessel-bench-{os.getpid()}.out"
WORDS = (
    "storage volume snapshot backup restore cluster namespace claim pod node "
    "replica policy bucket schedule retention mover chunk index pack tree"
).split()


def generate_large(root: Path, files: int) -> None:
    root.mkdir(parents=True)
    for i in range(files):
        with (root / f"blob-{i:03d}.bin").open("wb") as f:
            for _ in range(64):
                f.write(os.urandom(1 << 20))


def generate_small(root: Path, count: int, rng: random.Random) -> None:
    for i in range(count):
        directory = root / f"d{i // 500:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        size = rng.randint(1024, 16 * 1024)
        if rng.random() < 0.6:
            text = " ".join(rng.choice(WORDS) for _ in range(size // 6)).encode()[:size]
            (directory / f"f{i:05d}.txt").write_bytes(text)
        else:
            (directory / f"f{i:05d}.bin").write_bytes(rng.randbytes(size))


def generate_deep(root: Path, count: int, rng: random.Random) -> None:
    """`count` files of 0-4 KiB in a tree eight wide and five directories deep."""
    for i in range(count):
        parts = [f"d{(i >> shift) % 8}" for shift in (3, 6, 9, 12, 15)]
        directory = root.joinpath(*parts)
        directory.mkdir(parents=True, exist_ok=True)
        kind = rng.random()
        if kind < 0.1:
            data = b""
        elif kind < 0.6:
            size = rng.randint(1, 4096)
            data = " ".join(rng.choice(WORDS) for _ in range(size // 6 + 1)).encode()[:size]
        else:
            data = rng.randbytes(rng.randint(1, 4096))
        (directory / f"f{i:06d}").write_bytes(data)


def change_one_percent(large: Path, small: Path, rng: random.Random) -> None:
    blobs = sorted(large.iterdir())
    budget = sum(p.stat().st_size for p in blobs) // 100
    while budget > 0:
        path = rng.choice(blobs)
        with path.open("r+b") as f:
            f.seek(rng.randrange(0, path.stat().st_size - (1 << 20)))
            f.write(os.urandom(1 << 20))
        budget -= 1 << 20
    files = sorted(small.rglob("*.txt"))
    for path in rng.sample(files, len(files) // 100):
        path.write_bytes(path.read_bytes() + b" changed")


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (bytes) and output of one command. Dirty pages of earlier
    steps are written back first, so no tool pays for another's writes."""
    os.sync()
    started = time.monotonic()
    pid = os.posix_spawn(
        argv[0],
        argv,
        {**os.environ, **(env or {})},
        file_actions=[
            (
                os.POSIX_SPAWN_OPEN,
                1,
                str(OUTPUT),
                os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                0o600,
            )
        ],
    )
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.monotonic() - started
    out = Path(str(OUTPUT)).read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv[:5])} failed with {status}")
    return elapsed, usage.ru_maxrss * 1024, out


class Vessel:
    def __init__(self, store_args: list[str], env: dict[str, str] | None = None) -> None:
        self.base = [sys.executable, "-m", "services.mover.repo.cli", *store_args]
        self.env = {"VESSEL_REPOSITORY_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT), **(env or {})}

    def __call__(self, *args: str) -> tuple[float, int, dict[str, object]]:
        seconds, rss, out = timed([*self.base, *args], self.env)
        return seconds, rss, json.loads(out.strip().splitlines()[-1])


class Restic:
    def __init__(self, repo: Path) -> None:
        self.base = [shutil.which("restic") or "restic", "-r", str(repo), "--quiet"]
        self.env = {"RESTIC_PASSWORD": PASSWORD, "RESTIC_CACHE_DIR": str(repo) + "-cache"}

    def __call__(self, *args: str) -> tuple[float, int, str]:
        return timed([*self.base, *args], self.env)


class Borg:
    """borg 1.2 with its defaults (lz4), encrypted like the others (repokey-blake2)."""

    def __init__(self, repo: Path) -> None:
        self.repo = str(repo)
        self.env = {"BORG_PASSPHRASE": PASSWORD, "BORG_CACHE_DIR": str(repo) + "-cache"}
        self.archives = 0

    def init(self) -> None:
        timed([_which("borg"), "init", "--encryption=repokey-blake2", self.repo], self.env)

    def backup(self, source: Path) -> float:
        """Seconds to archive `source` (by its path relative to its parent, as restic)."""
        self.archives += 1
        name = f"{self.repo}::a{self.archives}"
        argv = ["/usr/bin/env", "-C", str(source.parent), _which("borg"), "create", name]
        return timed([*argv, source.name], self.env)[0]

    def restore(self, target: Path) -> float:
        """Seconds to extract the newest archive into `target`."""
        target.mkdir(parents=True)
        name = f"{self.repo}::a{self.archives}"
        argv = ["/usr/bin/env", "-C", str(target), _which("borg"), "extract", name]
        return timed(argv, self.env)[0]


def _which(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise SystemExit(f"bench/mover.py needs {tool} on PATH")
    return found


def copy_tree(source: Path, target: Path) -> float:
    os.sync()
    started = time.monotonic()
    subprocess.run(["cp", "-r", str(source), str(target)], check=True)
    subprocess.run(["sync"], check=True)
    seconds = time.monotonic() - started
    shutil.rmtree(target)
    return seconds


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def metric(
    name: str, vessel: float, peer: str, peer_value: float, higher_is_better: bool = True
) -> dict[str, object]:
    ratio = vessel / peer_value if higher_is_better else peer_value / vessel
    return {
        "metric": name,
        "vessel": round(vessel, 3),
        "peer": peer,
        "peer_value": round(peer_value, 3),
        "ratio": round(ratio, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gib", type=int, default=1, help="GiB of large random files")
    parser.add_argument("--small", type=int, default=20000, help="number of small files")
    parser.add_argument("--deep", type=int, default=50000, help="files of the deep tree")
    parser.add_argument("--rss-gib", type=int, default=4, help="size for the second RSS probe")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="vessel-bench-"))
    rng = random.Random(1)
    results: list[dict[str, object]] = []
    try:
        large, small = work / "data" / "large", work / "data" / "small"
        print(
            f"generating {args.gib} GiB of large files and {args.small} small files in {work}",
            file=sys.stderr,
        )
        generate_large(large, 16 * args.gib)
        generate_small(small, args.small, rng)
        deep = work / "data" / "deep"
        generate_deep(deep, args.deep, rng)
        large_mb = du(large) / 1e6
        cp_seconds = min(copy_tree(large, work / "cp-copy") for _ in range(REPEAT))
        # Full backups: best of REPEAT, each into a fresh repository (this VM is noisy);
        # the last repositories stay for the steps that follow.
        r_backup = v_backup = float("inf")
        for _ in range(REPEAT):
            for name in ("vessel", "restic", "restic-cache"):
                shutil.rmtree(work / name, ignore_errors=True)
            vessel, restic = Vessel(["--local", str(work / "vessel")]), Restic(work / "restic")
            vessel("init")
            restic("init")
            r_backup = min(r_backup, restic("backup", str(large))[0])
            seconds, v_rss_1, v_large = vessel("backup", str(large))
            v_backup = min(v_backup, seconds)
        results.append(
            metric("backup_large_MBps", large_mb / v_backup, "restic", large_mb / r_backup)
        )
        results.append(
            metric("backup_large_vs_cp", large_mb / v_backup, "cp -r", large_mb / cp_seconds)
        )
        v_repo = du(work / "vessel")
        results.append(
            {
                "metric": "repo_overhead_random_pct",
                "vessel": round(100 * (v_repo - du(large)) / du(large), 3),
                "peer": "restic",
                "peer_value": round(100 * (du(work / "restic") - du(large)) / du(large), 3),
                "ratio": None,
            }
        )

        r_restore, _, _ = restic("restore", "latest", "--target", str(work / "r-out"))
        shutil.rmtree(work / "r-out")
        v_restore, _, _ = vessel("restore", str(v_large["snapshot"]), str(work / "v-out"))
        shutil.rmtree(work / "v-out")
        results.append(
            metric("restore_large_MBps", large_mb / v_restore, "restic", large_mb / r_restore)
        )
        results.append(
            metric("restore_large_vs_cp", large_mb / v_restore, "cp -r", large_mb / cp_seconds)
        )

        before_v, before_r = du(work / "vessel"), du(work / "restic")
        r_small, _, _ = restic("backup", str(small))
        v_small_s, _, v_small = vessel("backup", str(small))
        results.append(
            metric(
                "backup_small_files_per_s", args.small / v_small_s, "restic", args.small / r_small
            )
        )
        small_bytes = du(small)
        v_ratio = small_bytes / (du(work / "vessel") - before_v)
        r_ratio = small_bytes / (du(work / "restic") - before_r)
        results.append(metric("compression_ratio_small", v_ratio, "restic", r_ratio))
        r_small_restore, _, _ = restic(
            "restore", "latest", "--path", str(small), "--target", str(work / "r-small")
        )
        v_small_restore, _, _ = vessel("restore", str(v_small["snapshot"]), str(work / "v-small"))
        results.append(
            metric(
                "restore_small_files_per_s",
                args.small / v_small_restore,
                "restic",
                args.small / r_small_restore,
            )
        )
        shutil.rmtree(work / "r-small")
        shutil.rmtree(work / "v-small")
        results += small_file_metrics(
            work, (vessel, restic), small, deep, args, (v_small_s, v_small_restore)
        )

        change_one_percent(large, small, rng)
        r_incr, _, _ = restic("backup", str(large))
        v_incr, _, _ = vessel("backup", str(large), "--parent", str(v_large["snapshot"]))
        results.append(
            metric("incremental_1pct_seconds", v_incr, "restic", r_incr, higher_is_better=False)
        )

        results += s3_metrics(work, large, large_mb)
        direct, copy = direct_transfer_seconds(work, large)
        results.append(metric("direct_transfer_MBps", large_mb / direct, "copy", large_mb / copy))

        rss_dir = work / "data" / "rss"
        generate_large(rss_dir, 16 * args.rss_gib)
        _, v_rss_4, _ = Vessel(["--local", str(work / "vessel-rss")])("init")
        _, v_rss_4, _ = Vessel(["--local", str(work / "vessel-rss")])("backup", str(rss_dir))
        results.append(
            {
                "metric": "backup_peak_rss_MB",
                "vessel": round(v_rss_4 / 1e6, 1),
                "peer": f"same at {args.gib} GiB",
                "peer_value": round(v_rss_1 / 1e6, 1),
                "ratio": round(v_rss_4 / v_rss_1, 3),
                "sizes_gib": [args.gib, args.rss_gib],
            }
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for line in results:
        print(json.dumps(line))


def small_file_metrics(
    work: Path,
    tools: tuple[Vessel, Restic],
    small: Path,
    deep: Path,
    args: argparse.Namespace,
    vessel_small: tuple[float, float],
) -> list[dict[str, object]]:
    """Flat small files against borg too (`vessel_small`: Vessel's backup and restore
    seconds of them, measured beside restic's), and the deep tree against both."""
    vessel, restic = tools
    borg = Borg(work / "borg")
    borg.init()
    b_small = borg.backup(small)
    b_small_restore = borg.restore(work / "b-small")
    shutil.rmtree(work / "b-small")
    v_deep, _, v_snap = vessel("backup", str(deep))
    r_deep, _, _ = restic("backup", str(deep))
    b_deep = borg.backup(deep)
    v_restore, _, _ = vessel("restore", str(v_snap["snapshot"]), str(work / "v-deep"))
    r_restore, _, _ = restic(
        "restore", "latest", "--path", str(deep), "--target", str(work / "r-deep")
    )
    b_restore = borg.restore(work / "b-deep")
    for name in ("v-deep", "r-deep", "b-deep"):
        shutil.rmtree(work / name)
    files, deep_files = args.small, args.deep
    return [
        metric(
            "backup_small_files_per_s_vs_borg", files / vessel_small[0], "borg", files / b_small
        ),
        metric(
            "restore_small_files_per_s_vs_borg",
            files / vessel_small[1],
            "borg",
            files / b_small_restore,
        ),
        metric("backup_deep_files_per_s", deep_files / v_deep, "restic", deep_files / r_deep),
        metric("backup_deep_files_per_s_vs_borg", deep_files / v_deep, "borg", deep_files / b_deep),
        metric(
            "restore_deep_files_per_s", deep_files / v_restore, "restic", deep_files / r_restore
        ),
        metric(
            "restore_deep_files_per_s_vs_borg",
            deep_files / v_restore,
            "borg",
            deep_files / b_restore,
        ),
    ]


def s3_metrics(work: Path, large: Path, large_mb: float) -> list[dict[str, object]]:
    server = S3Server(work / "s3")

    def ready() -> bool:
        MinioStore(server.endpoint, "raw", server.access_key, server.secret_key).ensure_bucket()
        return True

    server.start(ready=ready)
    try:
        raw = MinioStore(server.endpoint, "raw", server.access_key, server.secret_key)
        started = time.monotonic()
        for path in sorted(large.iterdir()):
            raw.put_file(f"raw/{path.name}", path)
        raw_seconds = time.monotonic() - started
        env = {"VESSEL_S3_ACCESS_KEY": server.access_key, "VESSEL_S3_SECRET_KEY": server.secret_key}
        vessel = Vessel(["--s3", server.endpoint, "--bucket", "vessel"], env)
        MinioStore(server.endpoint, "vessel", server.access_key, server.secret_key).ensure_bucket()
        vessel("init")
        seconds, _, _ = vessel("backup", str(large))
        store = MinioStore(server.endpoint, "vessel", server.access_key, server.secret_key)
        sealed, plain = documents_seconds(store, SEALED_APP_OBJECTS)
        return [
            metric(
                "backup_s3_vs_raw_put_MBps",
                large_mb / seconds,
                "put_object",
                large_mb / raw_seconds,
            ),
            {
                **metric("backup_documents_seconds", sealed, "plaintext", plain, False),
                "objects": SEALED_APP_OBJECTS,
                # What sealing adds to a backup of the large data: the goal is < 2 %.
                "sealing_pct_of_backup": round(100 * max(sealed - plain, 0) / seconds, 3),
            },
        ]
    finally:
        server.stop()


if __name__ == "__main__":
    main()
