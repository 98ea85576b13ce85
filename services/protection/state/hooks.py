"""KV `hooks`: execution hooks by `<app_id>.<hook_id>`, read by the flows before they run
an app's hooks of one stage and written by the hook commands (`hook_commands.py`)."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from vessel.bus.nats_port import KeyValue
from vessel.contracts.hooks import ExecHook, HookStage, hook_key

log = logging.getLogger("vessel.protection.hooks")


class HookStore:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def put(self, hook: ExecHook) -> None:
        await self.kv.put(hook.key, hook.model_dump_json().encode())

    async def remove(self, app_id: str, hook_id: str) -> ExecHook | None:
        """The hook removed; None when it was not there (removed before, or never put)."""
        key = hook_key(app_id, hook_id)
        entry = await self.kv.get(key)
        if entry is None or not entry.value:
            return None
        hook = ExecHook.model_validate_json(entry.value)
        await self.kv.delete(key)
        return hook

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
