"""Run the real ``kubectl`` against an emulator, with the kubeconfig the emulator writes."""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import require
from vessel_dev.emulators.kube import KubeEmulator

TIMEOUT = 60.0


def binary() -> str:
    """kubectl from PATH; a skip when missing, but a failure in CI."""
    found = shutil.which("kubectl")
    require(None if found else "kubectl is not on PATH")
    assert found is not None
    return found


class Kubectl:
    def __init__(self, emulator: KubeEmulator, workdir: Path) -> None:
        self.binary = binary()
        self.kubeconfig = workdir / "kubectl.kubeconfig"
        emulator.write_kubeconfig(self.kubeconfig)
        # Its own home: discovery and HTTP caches from other runs must not be read.
        home = workdir / "home"
        home.mkdir(exist_ok=True)
        self.stderr = ""
        self.env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(home),
            "KUBECONFIG": str(self.kubeconfig),
        }

    def __call__(self, *args: str, ok: bool = True, stdin: str | None = None) -> str:
        done = subprocess.run(
            [self.binary, *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        self.stderr = done.stderr
        if ok:
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
            return done.stdout
        assert done.returncode != 0, f"kubectl {' '.join(args)} succeeded: {done.stdout}"
        return done.stderr

    @contextmanager
    def streaming(self, *args: str) -> Iterator[Callable[[Callable[[str], bool]], str]]:
        """Run a long-lived kubectl (``get -w``); yields ``until(predicate)``, which returns
        the first output line matching it or fails after a timeout."""
        proc = subprocess.Popen(
            [self.binary, *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()

        def until(predicate: Callable[[str], bool], timeout: float = 20.0) -> str:
            deadline = time.monotonic() + timeout
            seen: list[str] = []
            while (left := deadline - time.monotonic()) > 0:
                try:
                    line = lines.get(timeout=left)
                except queue.Empty:
                    break
                if line is None:
                    stderr = proc.stderr.read() if proc.stderr else ""
                    raise AssertionError(f"kubectl ended early: {seen} {stderr}")
                seen.append(line)
                if predicate(line):
                    return line
            raise AssertionError(f"no matching line within {timeout}s; saw {seen}")

        try:
            yield until
        finally:
            proc.kill()
            proc.wait(TIMEOUT)
            reader.join(TIMEOUT)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


def rows(output: str) -> list[dict[str, str]]:
    """kubectl's human-readable table as one dict per row, keyed by column header.

    Cells are cut at the header's column offsets, so empty cells stay in their column."""
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines:
        return []
    header = [(m.start(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", lines[0])]
    ends = [start for start, _ in header[1:]] + [None]
    return [
        {name: line[start:end].strip() for (start, name), end in zip(header, ends, strict=True)}
        for line in lines[1:]
    ]
