"""Execution hooks in KV `hooks` (`<app_id>.<hook_id>`): the put/remove command handlers and
the lookup the snapshot, backup and restore flows use before running them.

Handlers are idempotent: a repeated put stores the same record, a repeated remove finds
nothing to remove; each announces what it did (`protection.hook.changed` / `.removed`),
again on redelivery, so a consumer never misses the fact (it de-duplicates on content).
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError

from vessel.bus.nats_port import Bus, KeyValue
from vessel.contracts import subjects
from vessel.contracts.hooks import ExecHook, HookStage, PutHook, RemoveHook, hook_key

log = logging.getLogger("vessel.protection.hooks")


class HookStore:
    def __init__(self, bus: Bus, kv: KeyValue) -> None:
        self.bus = bus
        self.kv = kv

    async def on_put(self, cmd: PutHook) -> None:
        hook = cmd.hook
        await self.kv.put(hook.key, hook.model_dump_json().encode())
        log.info("hook %s of %s put by %s", hook.id, hook.app_id, cmd.requested_by)
        await self.bus.publish(
            subjects.HOOK_CHANGED, hook, subject=f"/apps/{hook.app_id}/hooks/{hook.id}"
        )

    async def on_remove(self, cmd: RemoveHook) -> None:
        key = hook_key(cmd.app_id, cmd.hook_id)
        entry = await self.kv.get(key)
        if entry is None or not entry.value:
            return  # removed before (or never there): nothing to announce
        hook = ExecHook.model_validate_json(entry.value)
        await self.kv.delete(key)
        log.info("hook %s of %s removed by %s", hook.id, hook.app_id, cmd.requested_by)
        await self.bus.publish(
            subjects.HOOK_REMOVED, hook, subject=f"/apps/{hook.app_id}/hooks/{hook.id}"
        )

    async def get(self, app_id: str, hook_id: str) -> ExecHook | None:
        entry = await self.kv.get(hook_key(app_id, hook_id))
        return ExecHook.model_validate_json(entry.value) if entry and entry.value else None

    async def for_app(self, app_id: str, stage: HookStage | None = None) -> list[ExecHook]:
        """The app's hooks (of one stage, if given) in id order, the order they run in."""
        found: list[ExecHook] = []
        # App names may hold dots, so the key prefix alone could name another app's hook.
        for key in await self.kv.keys():
            if not key.startswith(f"{app_id}."):
                continue
            entry = await self.kv.get(key)
            if entry is None or not entry.value:
                continue
            try:
                hook = ExecHook.model_validate_json(entry.value)
            except ValidationError:
                log.warning("hook record %s is unreadable; ignored", key)
                continue
            if hook.app_id == app_id and (stage is None or hook.stage == stage):
                found.append(hook)
        return sorted(found, key=lambda h: h.id)


async def start_hooks(bus: Bus) -> tuple[HookStore, asyncio.Task[None]]:
    """The hook store and the consumer of its commands (durable `protection-hooks`)."""
    store = HookStore(bus, await bus.kv("hooks"))
    task = await bus.consume(
        "protection-hooks",
        {subjects.PUT_HOOK: store.on_put, subjects.REMOVE_HOOK: store.on_remove},
    )
    return store, task
