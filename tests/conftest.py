"""Fixtures over real servers: NATS with JetStream, SeaweedFS S3, emulated Kubernetes API
servers, btrfs on a loop device. A missing component skips for users and fails under
CI=true (`require`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.sealed.kmskit import REGION, Kms
from tests.support import require, started
from vessel.bus.nats_port import Bus
from vessel.kube.client import KubeCluster
from vessel.objectstore.minio_port import MinioStore
from vessel_dev.emulators.kube import KubeEmulator
from vessel_dev.rig import servers
from vessel_dev.rig.btrfs import LoopBtrfs, btrfs_available
from vessel_dev.rig.processes import KmsServer, MissingComponent


def pytest_report_header() -> str:
    return f"vessel servers: {servers.describe()}"


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Nats]:
    with started(servers.new_nats(tmp_path_factory.mktemp("nats"))) as server:
        yield server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.S3]:
    server = servers.new_s3(tmp_path_factory.mktemp("s3"))

    def ready() -> bool:
        store = MinioStore(server.endpoint, "vessel-ready", server.access_key, server.secret_key)
        store.ensure_bucket()
        store.put_bytes("probe", b"ok")
        return True

    try:
        server.start(ready=ready)
    except MissingComponent as exc:
        require(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kms_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KmsServer]:
    """A KMS-protocol server (moto) for the aws-kms key provider; tests that use it take
    the `kms` fixture (tests/sealed/kmskit.py), which also sets the AWS environment."""
    server = KmsServer(tmp_path_factory.mktemp("kms"))
    try:
        server.start()
    except MissingComponent as exc:
        require(str(exc))
    yield server
    server.stop()


@pytest.fixture
def kms(kms_server: KmsServer, monkeypatch: pytest.MonkeyPatch) -> Kms:
    """The session's KMS server, with the standard AWS environment pointing at it (so
    providers built from configuration or the command line reach it too)."""
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "vessel-tests")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "vessel-tests-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", kms_server.endpoint_url)
    return Kms(kms_server.endpoint_url)


@pytest.fixture
def bucket(s3_server: servers.S3) -> MinioStore:
    """A fresh, empty bucket on the session's S3 server."""
    store = MinioStore(
        s3_server.endpoint, f"t-{uuid.uuid4().hex[:12]}", s3_server.access_key, s3_server.secret_key
    )
    store.ensure_bucket()
    return store


@pytest.fixture
def lock_bucket(s3_server: servers.S3) -> MinioStore:
    """A fresh, empty bucket with S3 Object Lock (hence versioning) enabled."""
    store = MinioStore(
        s3_server.endpoint, f"l-{uuid.uuid4().hex[:12]}", s3_server.access_key, s3_server.secret_key
    )
    store.ensure_bucket(object_lock=True)
    return store


@pytest.fixture
async def bus(nats_server: servers.Nats) -> AsyncIterator[Bus]:
    bus = Bus(source="/clusters/test/tests")
    await bus.connect(nats_server.url, name="vessel-tests")
    yield bus
    await bus.close()


@pytest.fixture
def kube_emulator(tmp_path: Path) -> Iterator[tuple[KubeEmulator, Path]]:
    emulator = KubeEmulator(allow_exec=True)
    emulator.start()
    kubeconfig = tmp_path / "kubeconfig"
    emulator.write_kubeconfig(kubeconfig)
    yield emulator, kubeconfig
    emulator.stop()


@pytest.fixture
def kube(kube_emulator: tuple[KubeEmulator, Path]) -> KubeCluster:
    """A cluster: the API server named by VESSEL_TEST_KUBECONFIG, else an emulated one."""
    real = os.environ.get("VESSEL_TEST_KUBECONFIG")
    return KubeCluster(Path(real) if real else kube_emulator[1], "test")


@pytest.fixture
def btrfs_root(tmp_path: Path) -> Iterator[Path]:
    require(btrfs_available())
    fs = LoopBtrfs(tmp_path / "btrfs.img", tmp_path / "btrfs", size_bytes=512 << 20)
    fs.start()
    try:
        yield fs.mountpoint
    finally:
        fs.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fault suite's results table (`tests/faults/`): each of its tests records rows
    (fault, operation, where it was, final phase, seconds to it, data check) as a user
    property, which crosses from pytest-xdist's workers; this hook runs where the summary
    is written, which loads only this top conftest."""
    rows = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", [])
        if name == "fault_row"
    ]
    if not rows:
        return
    terminalreporter.section("faults: every operation's final phase")
    head = ("fault", "operation", "at the fault", "final phase", "seconds", "data check")
    terminalreporter.write_line(" | ".join(head))
    for r in rows:
        cells = (r["fault"], r["kind"], r["at_fault"], r["phase"], f"{r['seconds']:.1f}", r["data"])
        terminalreporter.write_line(" | ".join(cells))
