"""Mover benchmark: Vessel's repository against restic and `cp -r` on the same data.

Run: `.venv/bin/python bench/mover.py [--gib 1] [--small 20000] [--rss-gib 4]`.
Every tool runs as a subprocess on the same generated data in this one invocation:
16 x 64 MiB random files per GiB, and many 1-16 KiB files (~60% text). Both repositories
are local directories (CPU and disk path); the network path backs up to a SeaweedFS S3
server against raw `put_object` of the same files, and times a backup's documents
sealed against plaintext (`bench/sealing.py`). Ends with one JSON line per metric.
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
