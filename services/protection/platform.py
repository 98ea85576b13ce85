"""Platform catalog DR: the policies kept in every bucket, and their recovery.

`PlatformExporter` follows KV `schedules`, `hooks`, `app-definitions` and `buckets` (a
watch of each) and, a second after they change, seals what they hold into every bucket
that holds its master key (it never makes one: the mover or a backup may be making it at
the same moment), under this install's id (`catalog/platform/<install>.sealed`, role
`platform`, owner the install; never locked: it is rewritten). The id is made once per
install (KV `platform`, key `install`), so a fresh install never overwrites the export of
the one it is to recover. A bucket is written again only when the export's content
changed for it; one that cannot be written is retried every minute. Every replica exports
the same content, so which one wins does not matter.

`PlatformRecovery` answers `protection.platform.recover`: it opens the export of the
install named, else the most recent one of another install, and replays each policy as
its ordinary command (`schedule.put`, `hook.put`, `bucket.put`, discovery's
`app.define`) with ids derived from the operation's, so each is validated as when it was
made, and a repeated recovery repeats nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from services.protection.context import ProtectionContext
from vessel.buckets import BucketRegistry
from vessel.bus.errors import KeyExistsError, PermanentError
from vessel.bus.nats_port import KeyValue
from vessel.contracts import state, subjects
from vessel.contracts.buckets import BucketRecord, PutBucket
from vessel.contracts.commands import DefineApp
from vessel.contracts.hooks import ExecHook, PutHook
from vessel.contracts.operations import Operation, Phase
from vessel.contracts.platform import PlatformExport, PlatformRecovered, RecoverPlatform
from vessel.contracts.protection import ItemResult, PutSchedule, ScheduleSpec
from vessel.sealed.documents import SealedStore
from vessel.sealed.errors import SealError
from vessel.stopping import cancel_and_wait

log = logging.getLogger("vessel.protection.platform")
ROLE = "platform"
SETTLE_SECONDS = 1.0
RETRY_SECONDS = 60.0
M = TypeVar("M", bound=BaseModel)
FOLLOWED = (state.SCHEDULES, state.HOOKS, state.APP_DEFINITIONS, state.BUCKETS)


def seal(install: str, document: dict[str, Any], store: SealedStore) -> None:
    store.put(state.platform_key(install), ROLE, install, document)


async def install_id(kv: KeyValue) -> str:
    """This install's id: made by the first protection to ask, the same ever after."""
    try:
        await kv.create("install", f"vessel-{secrets.token_hex(6)}".encode())
    except KeyExistsError:
        pass
    entry = await kv.get("install")
    if entry is None:
        raise PermanentError("KV platform lost its install id as it was made")
    return entry.value.decode()


def exports(store: SealedStore, own: str) -> dict[str, PlatformExport]:
    """The platform exports a bucket holds, by install, leaving out `own` and any that
    does not open (another key, a forged name)."""
    found = {}
    for key in store.store.list(state.PLATFORM_PREFIX):
        install = state.platform_install(key)
        if install is None or install == own:
            continue
        try:
            found[install] = PlatformExport.model_validate(store.get(key, ROLE, install))
        except (SealError, ValidationError) as exc:
            log.warning("platform export %s is not usable: %s", key, exc)
    return found


class PlatformExporter:
    def __init__(
        self,
        p: ProtectionContext,
        install: str,
        buckets: Callable[[], Awaitable[list[str]]],
        followed: dict[str, KeyValue],
        keyed: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        """`buckets`: the names of every bucket to export to; `followed`: the KV buckets
        of `FOLLOWED` by their catalogue names; `keyed`: whether a bucket holds its master
        key yet (None: assume so)."""
        self.p, self.install, self.buckets, self.followed = p, install, buckets, followed
        self.keyed = keyed
        self.held: dict[str, dict[str, bytes]] = {name: {} for name in followed}
        self.changed = asyncio.Event()
        self.written: dict[str, str] = {}
        """Bucket -> digest of the content last written there by this process."""

    @classmethod
    async def on(cls, p: ProtectionContext, registry: BucketRegistry) -> PlatformExporter:
        followed = {b.name: await p.kv(b) for b in FOLLOWED}

        async def keyed(name: str) -> bool:
            opened = await registry.open(name)
            keys = f"{opened.repository.strip('/')}/keys/"
            return bool(await asyncio.to_thread(opened.store.list, keys))

        install = await install_id(await p.kv(state.PLATFORM))
        return cls(p, install, registry.names, followed, keyed)

    async def run(self) -> None:
        ready = {name: asyncio.Event() for name in self.followed}
        watches = [
            asyncio.create_task(self._follow(kv, name, ready[name]))
            for name, kv in self.followed.items()
        ]
        try:
            await asyncio.gather(*(r.wait() for r in ready.values()))
            while True:
                await self.export()
                try:
                    await asyncio.wait_for(self.changed.wait(), RETRY_SECONDS)
                except TimeoutError:
                    continue
                await asyncio.sleep(SETTLE_SECONDS)  # a burst of changes: one export
        finally:
            await cancel_and_wait(watches)

    async def _follow(self, kv: KeyValue, name: str, ready: asyncio.Event) -> None:
        async for key, value in kv.watch(current=ready.set):
            if value is None:
                self.held[name].pop(key, None)
            else:
                self.held[name][key] = value
            self.changed.set()

    def content(self) -> PlatformExport:
        """The policies as the watches hold them; a record that does not parse is left out
        (its owner reports it), so one bad record never stops the export."""

        def parsed(name: str, model: type[M]) -> list[M]:
            found: list[M] = []
            for _, raw in sorted(self.held[name].items()):
                try:
                    found.append(model.model_validate_json(raw))
                except ValidationError:
                    log.warning("platform export leaves out an unreadable %s record", name)
            return found

        return PlatformExport(
            exported_at=datetime.now(UTC),
            schedules=parsed(state.SCHEDULES.name, ScheduleSpec),
            hooks=parsed(state.HOOKS.name, ExecHook),
            apps=parsed(state.APP_DEFINITIONS.name, DefineApp),
            buckets=[r.spec for r in parsed(state.BUCKETS.name, BucketRecord)],
        )

    async def export(self) -> list[str]:
        """Write the export where it changed; the buckets written."""
        self.changed.clear()
        doc = self.content()
        document = doc.model_dump(mode="json")
        policies = {k: v for k, v in document.items() if k != "exported_at"}
        digest = hashlib.sha256(json.dumps(policies, sort_keys=True).encode()).hexdigest()
        written = []
        for bucket in await self.buckets():
            if self.written.get(bucket) == digest:
                continue
            try:
                if self.keyed is not None and not await self.keyed(bucket):
                    continue  # no key yet: the first backup makes it (never two at once)
                await self.p.in_bucket(bucket, partial(seal, self.install, document))
            except Exception as exc:  # retried on the next round
                log.warning("platform export to bucket %s failed: %s", bucket, exc)
                continue
            self.written[bucket] = digest
            written.append(bucket)
        if written:
            log.info("platform exported (%s) to %s", doc.counts(), ", ".join(written))
        return written


class PlatformRecovery:
    def __init__(self, p: ProtectionContext) -> None:
        self.p = p

    async def on_recover(self, cmd: RecoverPlatform) -> None:
        op = Operation(
            id=cmd.operation_id,
            kind="recover-platform",
            bucket=cmd.bucket,
            requested_by=cmd.requested_by,
        )
        if not await self.p.operations.create(op):
            return  # a repeated command
        own = await install_id(await self.p.kv(state.PLATFORM))
        try:
            found = await self.p.in_bucket(cmd.bucket, lambda s: exports(s, own))
        except PermanentError as exc:
            await self._end(op, Phase.FAILED, f"bucket {cmd.bucket}: {exc}")
            return
        if cmd.from_install:
            chosen = cmd.from_install if cmd.from_install in found else None
        else:
            chosen = max(found, key=lambda i: found[i].exported_at, default=None)
        if chosen is None:
            held = ", ".join(sorted(found)) or "none"
            wanted = f"install {cmd.from_install}'s" if cmd.from_install else "another install's"
            why = f"bucket {cmd.bucket} holds no {wanted} platform export (it holds: {held})"
            await self._end(op, Phase.FAILED, why)
            return
        export = found[chosen]
        items = await self._replay(op, export)
        when = export.exported_at.isoformat()
        message = f"replayed {export.counts()} exported by {chosen} at {when}"
        await self._end(op, Phase.COMPLETED, message, items)
        await self.p.bus.publish(
            subjects.PLATFORM_RECOVERED,
            PlatformRecovered(
                operation_id=op.id,
                bucket=cmd.bucket,
                from_install=chosen,
                exported_at=export.exported_at,
                message=message,
            ),
        )

    async def _replay(self, op: Operation, export: PlatformExport) -> list[ItemResult]:
        by = op.requested_by
        items: list[ItemResult] = []

        async def send(kind: str, name: str, message: subjects.Message, payload: object) -> None:
            await self.p.bus.publish(message, payload)  # type: ignore[arg-type]
            items.append(ItemResult(kind=kind, name=name, state="Completed", message="replayed"))

        for n, bucket in enumerate(export.buckets):
            put_bucket = PutBucket(
                operation_id=f"{op.id}-bucket-{n}", bucket=bucket, requested_by=by
            )
            await send("bucket", bucket.name, subjects.PUT_BUCKET, put_bucket)
        for n, app in enumerate(export.apps):
            define = app.model_copy(update={"operation_id": f"{op.id}-app-{n}"})
            await send(
                "app", f"{app.cluster}.{app.namespace}.{app.name}", subjects.DEFINE_APP, define
            )
        for n, hook in enumerate(export.hooks):
            put_hook = PutHook(operation_id=f"{op.id}-hook-{n}", hook=hook, requested_by=by)
            await send("hook", f"{hook.app_id}/{hook.id}", subjects.PUT_HOOK, put_hook)
        for n, spec in enumerate(export.schedules):
            sched = PutSchedule(
                operation_id=f"{op.id}-schedule-{n}", schedule=spec, requested_by=by
            )
            await send("schedule", spec.id, subjects.PUT_SCHEDULE, sched)
        return items

    async def _end(
        self, op: Operation, phase: Phase, message: str, items: list[ItemResult] | None = None
    ) -> None:
        def end(o: Operation) -> None:
            o.phase, o.message, o.items = phase, message, items or o.items

        await self.p.operations.change(op.id, end)
        log.info("platform recovery %s from %s: %s", op.id, op.bucket, message)
