"""The world the protection API tests run in: a real gateway over TLS with tokens, real NATS,
a real S3 bucket holding backup catalogs, and KV records as protection would write them.

Protection itself does not run: what it owns (snapshot and schedule records, the catalog
objects, operations) is written directly, and its restore preflight is answered by a
responder on the real query subject whose answer each test chooses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.gateway.main import build_gateway
from tests.gateway.harness import (
    ADMIN_ENV,
    ADMIN_TOKEN,
    Pki,
    Running,
    app_record,
    issue,
    make_settings,
)
from vessel.bus.codec import decode
from vessel.bus.nats_port import Bus
from vessel.contracts import queries, subjects
from vessel.contracts.models import Payload
from vessel.contracts.operations import Operation, Phase
from vessel.contracts.protection import (
    AppSnapshotRecord,
    PreflightResult,
    PreflightViolation,
    Retention,
    ScheduleSpec,
    SnapshotVolume,
)
from vessel.objectstore.minio_port import MinioStore
from vessel.stopping import cancel_and_wait
from vessel_dev.rig.processes import NatsServer, S3Server

ACCESS_ENV, SECRET_ENV = "VESSEL_TEST_PROT_S3_ACCESS", "VESSEL_TEST_PROT_S3_SECRET"
Answer = Callable[[dict[str, Any]], Awaitable[PreflightResult | None]]
"""Decides the preflight's answer to a request (None: do not answer)."""


@dataclass
class Names:
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    @property
    def east(self) -> str:
        return f"east-{self.run}"

    @property
    def west(self) -> str:
        return f"west-{self.run}"

    @property
    def shop_app(self) -> str:
        return f"{self.east}.shop.web"

    @property
    def books_app(self) -> str:
        return f"{self.east}.books.api"

    def snapshot(self, n: int) -> str:
        return f"snap-{self.run}-{n}"

    def backup(self, n: int) -> str:
        return f"bk-{self.run}-{n}"

    @property
    def schedule(self) -> str:
        return f"sched-{self.run}"

    @property
    def operation(self) -> str:
        return f"backup-op-{self.run}"


@dataclass
class World:
    names: Names
    gateway: Running
    channel: grpc.aio.Channel
    bus: Bus
    store: MinioStore
    dr_store: MinioStore
    s3_endpoint: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    preflight_requests: list[dict[str, Any]] = field(default_factory=list)
    answer: Answer | None = None
    _responder: Any = None

    async def serve_preflight(self) -> None:
        async def handle(subject: str, body: bytes) -> bytes:
            request = json.loads(body)
            self.preflight_requests.append(request)
            result = await self.answer(request) if self.answer else PreflightResult(ok=True)
            if result is None:  # a replica that never answers: the caller times out
                await _forever()
            assert result is not None
            return result.model_dump_json().encode()

        self._responder = await self.bus.serve(queries.QUERY_RESTORE_PREFLIGHT, handle)

    async def stop_preflight(self) -> None:
        if self._responder is not None:
            await cancel_and_wait([self._responder])
            self._responder = None


async def _forever() -> None:
    await asyncio.Event().wait()


def catalog_doc(
    backup_id: str, app_id: str, cluster: str, namespace: str, when: datetime, **extra: Any
) -> dict[str, Any]:
    """A catalog object as protection writes it (format vessel.backup/1)."""
    return {
        "format": "vessel.backup/1",
        "backup_id": backup_id,
        "app_id": app_id,
        "cluster": cluster,
        "namespace": namespace,
        "created": when.isoformat(),
        "completed": (when + timedelta(minutes=2)).isoformat(),
        "resources_key": f"backups/{backup_id}/resources.json",
        "volumes": [
            {"namespace": namespace, "claim": "data", "snapshot_id": "ab" * 32, "bytes": 4096}
        ],
        **extra,
    }


def snapshot_record(
    snapshot_id: str, cluster: str, namespace: str, name: str, bucket: str = "default"
) -> AppSnapshotRecord:
    return AppSnapshotRecord(
        id=snapshot_id,
        app_id=f"{cluster}.{namespace}.{name}",
        cluster=cluster,
        namespace=namespace,
        bucket=bucket,
        resources_key=f"snapshots/{snapshot_id}/resources.json",
        phase="Completed",
        volumes=[
            SnapshotVolume(namespace=namespace, claim="data", volume_snapshot=f"vs-{snapshot_id}")
        ],
        created=datetime.now(UTC),
        completed=datetime.now(UTC),
    )


def schedule_spec(schedule_id: str, app_id: str) -> ScheduleSpec:
    return ScheduleSpec(
        id=schedule_id,
        app_id=app_id,
        kind="backup",
        bucket="default",
        frequency="daily",
        hour=2,
        minute=30,
        retention=Retention(daily=7, weekly=4, floor=3),
    )


async def build_world(names: Names, bus: Bus, s3: S3Server, pki: Pki) -> World:
    n = names
    store = MinioStore(s3.endpoint, f"prot-{n.run}", s3.access_key, s3.secret_key)
    store.ensure_bucket()
    dr_store = MinioStore(s3.endpoint, f"prot-dr-{n.run}", s3.access_key, s3.secret_key)
    dr_store.ensure_bucket()
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(5):  # five backups of EAST/shop, one of EAST/books
        doc = catalog_doc(n.backup(i), n.shop_app, n.east, "shop", base + timedelta(days=i))
        store.put_bytes(f"backups/{n.backup(i)}/backup.json", json.dumps(doc).encode())
        store.put_bytes(f"backups/{n.backup(i)}/resources.json", b"{}")
    books = catalog_doc(n.backup(9), n.books_app, n.east, "books", base)
    store.put_bytes(f"backups/{n.backup(9)}/backup.json", json.dumps(books).encode())
    store.put_bytes(f"backups/{n.backup(8)}/resources.json", b"{}")  # unfinished: no catalog

    inventory = await bus.kv("inventory")
    for a in (
        app_record(n.east, "shop", "web"),
        app_record(n.east, "books", "api"),
        app_record(n.west, "shop", "web"),
    ):
        await inventory.put(f"apps.{a.id}", a.model_dump_json().encode())
    snapshots = await bus.kv("app_snapshots")
    records = [snapshot_record(n.snapshot(i), n.east, "shop", "web") for i in range(3)]
    records.append(snapshot_record(n.snapshot(9), n.east, "books", "api"))
    for r in records:
        await snapshots.put(r.id, r.model_dump_json().encode())
    schedules = await bus.kv("schedules")
    for spec in (
        schedule_spec(n.schedule, n.shop_app),
        schedule_spec(f"{n.schedule}-b", n.books_app),
    ):
        await schedules.put(spec.id, spec.model_dump_json().encode())
    operations = await bus.kv("operations")
    done = Operation(id=n.operation, kind="backup", app_id=n.shop_app, bucket="default")
    done = done.model_copy(update={"phase": Phase.COMPLETED})
    await operations.put(done.id, done.model_dump_json().encode())

    def bucket(name: str, s: MinioStore) -> dict[str, Any]:
        return {
            "name": name,
            "endpoint": s3.endpoint,
            "bucket": s.bucket,
            "access_key_env": ACCESS_ENV,
            "secret_key_env": SECRET_ENV,
        }

    settings = make_settings(
        tls={"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)},
        clusters=[n.east, n.west],
        buckets=[bucket("default", store), bucket("dr", dr_store)],
    )
    built = await build_gateway(settings, bus, environ={ADMIN_ENV: ADMIN_TOKEN})
    await built.start()
    gateway = Running(built, pki)
    channel = gateway.channel()
    w = World(n, gateway, channel, bus, store, dr_store, s3.endpoint)
    w.tokens["admin"] = ADMIN_TOKEN
    scope = ([n.east, n.west], ["shop", "shop-copy"])
    for role in ("owner", "member", "viewer"):
        _, w.tokens[role] = await issue(channel, ADMIN_TOKEN, role, *scope)
    _, w.tokens["owner-books"] = await issue(channel, ADMIN_TOKEN, "owner", [n.east], ["books"])
    return w


@contextlib.asynccontextmanager
async def open_world(
    names: Names,
    label: str,
    nats_server: NatsServer,
    s3_server: S3Server,
    pki: Pki,
    *,
    preflight: bool = False,
) -> AsyncIterator[World]:
    """A module's world on its own bus (source `/clusters/test/<label>`), with the bucket
    credentials in the environment; `preflight` serves the restore preflight."""
    patch = pytest.MonkeyPatch()
    patch.setenv(ACCESS_ENV, s3_server.access_key)
    patch.setenv(SECRET_ENV, s3_server.secret_key)
    patch.delenv("VESSEL_CONFIG", raising=False)
    bus = Bus(source=f"/clusters/test/{label}")
    await bus.connect(nats_server.url, name=label)
    w = await build_world(names, bus, s3_server, pki)
    if preflight:
        await w.serve_preflight()
    try:
        yield w
    finally:
        if preflight:
            await w.stop_preflight()
        await w.gateway.close()
        await bus.close()
        patch.undo()


def answering(*found: PreflightViolation) -> Answer:
    """A preflight that answers with `found` (none: the restore may go ahead)."""

    async def answer(request: dict[str, Any]) -> PreflightResult:
        return PreflightResult(ok=not found, violations=list(found))

    return answer


def violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    found: dict[str, str] = {}
    status = rpc_status.from_call(error)
    for detail in status.details if status else []:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.update({v.field: v.description for v in bad.field_violations})
    return found


def reason(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    for detail in status.details if status else []:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


async def last_command(bus: Bus, message: subjects.Message) -> Payload:
    """The newest command on `message`'s subject still in the work queue (nothing consumes
    protection's commands in these tests)."""
    raw = await bus.js.get_last_msg(subjects.COMMANDS_STREAM, message.subject_for())
    _, payload = decode(raw.data or b"")
    return payload
