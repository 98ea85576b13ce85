"""HookService: execution hooks over gRPC.

Hooks are read from KV `hooks` (written by protection only); putting and deleting send
protection commands, so a put hook is listed once protection has stored it, a moment
after the answer. A hook is checked here with the contract's own rules (`ExecHook`), so
a bad one is refused at once with field violations. Hooks run commands inside the app's
containers, which is why changing them needs the owner role (auth/policy.py).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ValidationError

from services.gateway.auth import authz
from services.gateway.context import GatewayContext
from services.gateway.errors import RpcContext, guard, invalid, not_found
from services.gateway.operations import operation_id
from services.gateway.reads.lazy_pages import load_page
from services.gateway.validation import APP_ID, IDENTIFIER, Violations, require_ids
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.contracts import subjects
from vessel.contracts.hooks import ExecHook, PutHook, RemoveHook, hook_key


def hook_fields(message: ppb.Hook) -> dict[str, Any]:
    """The message as contract fields; unset optional fields take the contract's defaults."""
    fields: dict[str, Any] = {
        "id": message.id,
        "app_id": message.app_id,
        "stage": message.stage,
        "container_name": message.container_name,
        "container_image": message.container_image,
        "command": list(message.command),
        "builtin": message.builtin or None,
    }
    if message.timeout_seconds:
        fields["timeout_seconds"] = message.timeout_seconds
    if message.on_failure:
        fields["on_failure"] = message.on_failure
    return fields


def parse_hook(message: ppb.Hook) -> ExecHook:
    """The hook, or INVALID_ARGUMENT naming every field at fault (as `hook.<field>`)."""
    try:
        return ExecHook.model_validate(hook_fields(message))
    except ValidationError as exc:
        problems = [
            (".".join(["hook", *(str(p) for p in e["loc"])]), e["msg"]) for e in exc.errors()
        ]
        raise invalid(problems) from None


def hook_message(hook: ExecHook) -> ppb.Hook:
    return ppb.Hook(
        id=hook.id,
        app_id=hook.app_id,
        stage=hook.stage,
        container_name=hook.container_name,
        container_image=hook.container_image,
        command=hook.command,
        builtin=hook.builtin or "",
        timeout_seconds=hook.timeout_seconds,
        on_failure=hook.on_failure,
    )


def require_hook_ref(app_id: str, hook_id: str) -> None:
    """Both parts of a hook's name; every problem is reported at once."""
    problems: Violations = []
    for field, value, regex, what in (
        ("app_id", app_id, APP_ID, "an app id <cluster>.<namespace>.<name>"),
        ("id", hook_id, IDENTIFIER, "a hook id"),
    ):
        if not value:
            problems.append((field, "is required"))
        elif not regex.match(value):
            problems.append((field, f"{value!r} is not {what}"))
    if problems:
        raise invalid(problems)


class HookService(prpc.HookServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def _stored(self, key: str) -> ExecHook | None:
        entry = await self.ctx.hooks.get(key)
        if entry is None or not entry.value:
            return None
        return ExecHook.model_validate_json(entry.value)

    async def _existing(self, app_id: str, hook_id: str) -> ExecHook:
        require_hook_ref(app_id, hook_id)
        authz.require_scope(authz.current(), authz.app_id_target(app_id))
        hook = await self._stored(hook_key(app_id, hook_id))
        if hook is None or hook.app_id != app_id:
            raise not_found(f"hook {hook_id} of app {app_id}")
        return hook

    async def _earlier(
        self, request_id: str, kind: Literal["hook", "hook-remove"] = "hook"
    ) -> ExecHook | None:
        """What a first call with this request id put or deleted (a retry answers with it)."""
        value = await self.ctx.requests.remembered(kind, request_id) if request_id else None
        if value is None:
            return None
        first = ExecHook.model_validate_json(value)
        authz.require_scope(authz.current(), authz.app_id_target(first.app_id))
        return first

    @guard
    async def PutHook(self, request: ppb.PutHookRequest, context: RpcContext) -> ppb.Hook:
        rid = request.request_id
        require_ids(("request_id", rid, "an identifier", False))
        hook = parse_hook(request.hook)
        await self.ctx.app(hook.app_id)
        if (first := await self._earlier(rid)) is not None:
            return hook_message(first)
        value = hook.model_dump_json().encode()
        if rid and not await self.ctx.requests.remember("hook", rid, value):
            if (first := await self._earlier(rid)) is not None:  # a retry racing the first call
                return hook_message(first)
        await self.ctx.bus.publish(
            subjects.PUT_HOOK,
            PutHook(
                operation_id=operation_id("hook-put", rid),
                hook=hook,
                requested_by=authz.current().name,
            ),
        )
        return hook_message(hook)

    @guard
    async def ListHooks(
        self, request: ppb.ListHooksRequest, context: RpcContext
    ) -> ppb.ListHooksResponse:
        if request.app_id and not APP_ID.match(request.app_id):
            raise invalid(
                [("app_id", f"{request.app_id!r} is not an app id <cluster>.<namespace>.<name>")]
            )
        principal = authz.current()

        async def load(key: str) -> ppb.Hook | None:
            hook = await self._stored(key)
            if hook is None or (request.app_id and hook.app_id != request.app_id):
                return None
            if not authz.covers_all(principal, authz.app_id_target(hook.app_id)):
                return None
            return hook_message(hook)

        keys = await self.ctx.hooks.keys()
        if request.app_id:  # app names may hold dots: `load` checks the app id itself
            keys = [k for k in keys if k.startswith(f"{request.app_id}.")]
        items, token = await load_page(keys, load, request.page_size, request.page_token)
        return ppb.ListHooksResponse(hooks=items, next_page_token=token)

    @guard
    async def GetHook(self, request: ppb.GetHookRequest, context: RpcContext) -> ppb.Hook:
        return hook_message(await self._existing(request.app_id, request.id))

    @guard
    async def DeleteHook(self, request: ppb.DeleteHookRequest, context: RpcContext) -> ppb.Hook:
        rid = request.request_id
        require_ids(("request_id", rid, "an identifier", False))
        first = await self._earlier(rid, "hook-remove")
        if first is not None and (first.app_id, first.id) == (request.app_id, request.id):
            return hook_message(first)
        hook = await self._existing(request.app_id, request.id)
        value = hook.model_dump_json().encode()
        if rid and not await self.ctx.requests.remember("hook-remove", rid, value):
            return hook_message(hook)  # a retry racing the first call: that one removes it
        await self.ctx.bus.publish(
            subjects.REMOVE_HOOK,
            RemoveHook(
                operation_id=operation_id("hook-remove", rid),
                app_id=hook.app_id,
                hook_id=hook.id,
                requested_by=authz.current().name,
            ),
        )
        return hook_message(hook)
