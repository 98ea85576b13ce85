"""A real gateway in-process (grpc.aio on a free port) over the session's real NATS."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.gateway.main import build_gateway
from tests.gateway.harness import (
    ADMIN_ENV,
    ADMIN_TOKEN,
    Pki,
    Running,
    Starter,
    make_pki,
    make_settings,
)
from tests.gateway.protection_harness import World
from vessel.bus.nats_port import Bus
from vessel.config import VesselSettings
from vessel_cli.main import main as cli


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def start_gateway(bus: Bus, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Starter]:
    """`await start_gateway(settings, admin=...)`: build and start a gateway; stopped after."""
    monkeypatch.delenv("VESSEL_CONFIG", raising=False)
    running: list[Running] = []

    async def start(
        settings: VesselSettings | None = None,
        admin: str | None = ADMIN_TOKEN,
        pki: Pki | None = None,
    ) -> Running:
        settings = settings or make_settings()
        environ = {ADMIN_ENV: admin} if admin else {}
        built = await build_gateway(settings, bus, environ=environ)
        await built.start()
        run = Running(built, pki)
        running.append(run)
        return run

    yield start
    for run in running:
        await run.close()


@pytest.fixture
def no_client_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for var in (
        "VESSEL_ENDPOINT",
        "VESSEL_TOKEN",
        "VESSEL_TLS",
        "VESSEL_TLS_CA",
        "VESSEL_TLS_CERT",
        "VESSEL_TLS_KEY",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("VESSEL_CLI_CONFIG", str(tmp_path / "absent.yaml"))
    yield


@pytest.fixture
def run(
    world: World, pki: Pki, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Any:
    """`await run(*argv)`: the CLI against the module's `world` as admin; (code, out, err)."""
    monkeypatch.setenv("VESSEL_ENDPOINT", world.gateway.endpoint)
    monkeypatch.setenv("VESSEL_TLS_CA", str(pki.ca))
    monkeypatch.setenv("VESSEL_TOKEN", ADMIN_TOKEN)

    async def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = await asyncio.to_thread(cli, list(argv))
        except SystemExit as exc:  # argument errors found by the CLI itself
            code = 2 if isinstance(exc.code, int) else 1
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
        out, err = capsys.readouterr()
        return code, out, err

    return run
