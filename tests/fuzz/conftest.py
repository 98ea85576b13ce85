"""One running Vessel (every service a process, real NATS and S3, emulated clusters) that
the fuzz tests attack; its processes must all be alive when they end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vessel_dev.rig.stack import Stack


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("fuzz-stack"), btrfs=False) as running:
        yield running
        dead = [p.name for p in running.services if not p.alive()]
        assert not dead, f"services died under fuzzing: {dead}\n{running.logs()}"
