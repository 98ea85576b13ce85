"""HookService through a real gateway over TLS with tokens and real NATS.

Protection does not run: the put and remove commands are read back from the work queue,
and stored hooks are written to KV `hooks` as protection writes them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from tests.gateway.harness import Pki, bearer, unique
from tests.gateway.protection_harness import (
    Names,
    World,
    last_command,
    open_world,
    reason,
    violations,
)
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.hooks import ExecHook, PutHook, RemoveHook
from vessel_dev.rig.processes import NatsServer, S3Server

N = Names()


@pytest.fixture(scope="module")
async def world(nats_server: NatsServer, s3_server: S3Server, pki: Pki) -> AsyncIterator[World]:
    async with open_world(N, "gateway-hooks", nats_server, s3_server, pki) as w:
        kv = await w.bus.kv("hooks")
        for hook in stored_hooks():
            await kv.put(hook.key, hook.model_dump_json().encode())
        yield w


def stored_hooks() -> list[ExecHook]:
    """Three hooks of the shop app, one of the books app, as protection keeps them."""
    shop = [
        ExecHook(
            id=f"h{i}",
            app_id=N.shop_app,
            stage="pre-snapshot",
            container_name="^db$",
            command=["sh", "-c", f"echo {i}"],
        )
        for i in range(3)
    ]
    books = ExecHook(
        id="freeze",
        app_id=N.books_app,
        stage="pre-backup",
        container_image="postgres",
        builtin="fsfreeze",
    )
    return [*shop, books]


def stub(w: World) -> prpc.HookServiceStub:
    return prpc.HookServiceStub(w.channel)


def hook(**fields: Any) -> ppb.Hook:
    base: dict[str, Any] = {
        "id": "flush",
        "app_id": N.shop_app,
        "stage": "pre-snapshot",
        "container_name": "^db$",
        "command": ["sh", "-c", "sync"],
    }
    base.update(fields)
    return ppb.Hook(**base)


async def put(w: World, message: ppb.Hook, token: str = "owner", request_id: str = "") -> ppb.Hook:
    answer: ppb.Hook = await stub(w).PutHook(
        ppb.PutHookRequest(hook=message, request_id=request_id), metadata=bearer(w.tokens[token])
    )
    return answer


async def refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value


async def last_seq(bus: Bus) -> int:
    raw = await bus.js.get_last_msg(subjects.COMMANDS_STREAM, subjects.PUT_HOOK.subject_for())
    return int(raw.seq or 0)


async def test_put_sends_the_hook_with_its_defaults(world: World) -> None:
    answer = await put(world, hook(container_image="postgres:16"))
    assert answer.timeout_seconds == 30 and answer.on_failure == "fail" and answer.builtin == ""
    command = await last_command(world.bus, subjects.PUT_HOOK)
    assert isinstance(command, PutHook)
    sent = command.hook
    assert (sent.id, sent.app_id, sent.stage) == ("flush", N.shop_app, "pre-snapshot")
    assert sent.command == ["sh", "-c", "sync"] and sent.container_image == "postgres:16"
    assert command.requested_by != "anonymous"
    frozen = await put(
        world,
        hook(id="freeze", command=[], builtin="fsfreeze", timeout_seconds=5, on_failure="continue"),
    )
    assert frozen.builtin == "fsfreeze" and frozen.timeout_seconds == 5
    command = await last_command(world.bus, subjects.PUT_HOOK)
    assert isinstance(command, PutHook) and command.hook.builtin == "fsfreeze"
    assert command.hook.on_failure == "continue" and command.hook.command == []


async def test_a_retried_put_answers_the_first_and_sends_nothing_more(world: World) -> None:
    rid = unique("hook")
    first = await put(world, hook(id="retry"), request_id=rid)
    sent = await last_seq(world.bus)
    again = await put(world, hook(id="retry", command=["true"]), request_id=rid)
    assert again == first and list(again.command) == ["sh", "-c", "sync"]
    assert await last_seq(world.bus) == sent
    command = await last_command(world.bus, subjects.PUT_HOOK)
    assert isinstance(command, PutHook) and command.operation_id == f"hook-put-{rid}"


async def test_bad_hooks_are_invalid_naming_the_field(world: World) -> None:
    cases = {
        "hook.stage": hook(stage="sometimes"),
        "hook.container_name": hook(container_name="(unclosed"),
        "hook.timeout_seconds": hook(timeout_seconds=99999),
        "hook.on_failure": hook(on_failure="shrug"),
        "hook.builtin": hook(builtin="reboot"),
        "hook.id": hook(id="no spaces"),
        "hook.app_id": hook(app_id="nope"),
        "hook": hook(builtin="fsfreeze"),  # both a command and a builtin
    }
    for field, message in cases.items():
        error = await refused(put(world, message, "admin"))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in violations(error), (field, violations(error))
    error = await refused(put(world, hook(container_name="", command=["true"]), "admin"))
    assert "container_name or container_image" in violations(error)["hook"]


async def test_putting_and_deleting_needs_an_owner_in_scope(world: World) -> None:
    error = await refused(put(world, hook(), "member"))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED and reason(error) == "MISSING_ROLE"
    error = await refused(put(world, hook(), "owner-books"))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED and reason(error) == "OUT_OF_SCOPE"
    error = await refused(put(world, hook(app_id=f"{N.east}.shop.nothing")))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert f"{N.east}.shop.nothing" in (error.details() or "")
    delete = ppb.DeleteHookRequest(app_id=N.shop_app, id="h0")
    error = await refused(stub(world).DeleteHook(delete, metadata=bearer(world.tokens["member"])))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED and reason(error) == "MISSING_ROLE"


async def test_list_filters_pages_and_keeps_to_the_scope(world: World) -> None:
    viewer = bearer(world.tokens["viewer"])
    shop = await stub(world).ListHooks(ppb.ListHooksRequest(app_id=N.shop_app), metadata=viewer)
    assert [h.id for h in shop.hooks] == ["h0", "h1", "h2"]
    assert list(shop.hooks[1].command) == ["sh", "-c", "echo 1"]
    pages: list[str] = []
    token = ""
    while True:
        page = await stub(world).ListHooks(
            ppb.ListHooksRequest(app_id=N.shop_app, page_size=2, page_token=token), metadata=viewer
        )
        pages.append(",".join(h.id for h in page.hooks))
        token = page.next_page_token
        if not token:
            break
    assert pages == ["h0,h1", "h2"]
    everything = await stub(world).ListHooks(ppb.ListHooksRequest(page_size=1000), metadata=viewer)
    mine = {(h.app_id, h.id) for h in everything.hooks if N.run in h.app_id}
    assert (N.books_app, "freeze") not in mine and (N.shop_app, "h0") in mine  # books: no scope
    books = await stub(world).ListHooks(
        ppb.ListHooksRequest(), metadata=bearer(world.tokens["owner-books"])
    )
    assert [(h.app_id, h.id, h.builtin) for h in books.hooks] == [
        (N.books_app, "freeze", "fsfreeze")
    ]
    error = await refused(stub(world).ListHooks(ppb.ListHooksRequest(app_id="x"), metadata=viewer))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_get_and_delete(world: World) -> None:
    viewer, owner = bearer(world.tokens["viewer"]), bearer(world.tokens["owner"])
    got = await stub(world).GetHook(ppb.GetHookRequest(app_id=N.shop_app, id="h2"), metadata=viewer)
    assert got.stage == "pre-snapshot" and got.container_name == "^db$"
    for app_id, hook_id in ((N.shop_app, "nothing"), (N.shop_app, "freeze")):
        error = await refused(
            stub(world).GetHook(ppb.GetHookRequest(app_id=app_id, id=hook_id), metadata=viewer)
        )
        assert error.code() == grpc.StatusCode.NOT_FOUND and hook_id in (error.details() or "")
    error = await refused(
        stub(world).GetHook(ppb.GetHookRequest(app_id=N.books_app, id="freeze"), metadata=viewer)
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    error = await refused(
        stub(world).GetHook(ppb.GetHookRequest(app_id="", id=""), metadata=viewer)
    )
    assert set(violations(error)) == {"app_id", "id"}
    rid = unique("del")
    request = ppb.DeleteHookRequest(app_id=N.shop_app, id="h1", request_id=rid)
    deleted = await stub(world).DeleteHook(request, metadata=owner)
    assert deleted.id == "h1" and list(deleted.command) == ["sh", "-c", "echo 1"]
    command = await last_command(world.bus, subjects.REMOVE_HOOK)
    assert isinstance(command, RemoveHook)
    assert (command.app_id, command.hook_id, command.operation_id) == (
        N.shop_app,
        "h1",
        f"hook-remove-{rid}",
    )
    # As protection would: the hook is gone. A retry still answers what it removed.
    await (await world.bus.kv("hooks")).delete(f"{N.shop_app}.h1")
    assert await stub(world).DeleteHook(request, metadata=owner) == deleted
    error = await refused(
        stub(world).DeleteHook(ppb.DeleteHookRequest(app_id=N.shop_app, id="h1"), metadata=owner)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
