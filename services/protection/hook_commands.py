"""The `hook.put` / `hook.remove` commands: hooks kept in KV `hooks` (`state/hooks.py`).

Handlers are idempotent: a repeated put stores the same record, a repeated remove finds
nothing to remove; each announces what it did (`protection.hook.changed` / `.removed`),
again on redelivery, so a consumer never misses the fact (it de-duplicates on content).
"""

from __future__ import annotations

import logging

from services.protection.state.hooks import HookStore
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.hooks import PutHook, RemoveHook

log = logging.getLogger("vessel.protection.hooks")


class HookCommands:
    def __init__(self, bus: Bus, store: HookStore) -> None:
        self.bus = bus
        self.store = store

    async def on_put(self, cmd: PutHook) -> None:
        hook = cmd.hook
        await self.store.put(hook)
        log.info("hook %s of %s put by %s", hook.id, hook.app_id, cmd.requested_by)
        await self.bus.publish(
            subjects.HOOK_CHANGED, hook, subject=f"/apps/{hook.app_id}/hooks/{hook.id}"
        )

    async def on_remove(self, cmd: RemoveHook) -> None:
        hook = await self.store.remove(cmd.app_id, cmd.hook_id)
        if hook is None:
            return  # removed before (or never there): nothing to announce
        log.info("hook %s of %s removed by %s", hook.id, hook.app_id, cmd.requested_by)
        await self.bus.publish(
            subjects.HOOK_REMOVED, hook, subject=f"/apps/{hook.app_id}/hooks/{hook.id}"
        )
