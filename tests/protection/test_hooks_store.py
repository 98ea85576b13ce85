"""Hook contracts and the hook commands over real NATS: validation names what is wrong,
put/remove go through the command stream into KV `hooks` and are announced."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from services.protection.hook_commands import HookCommands
from services.protection.state.hooks import HookStore
from vessel.bus.nats_port import Bus
from vessel.contracts import state, subjects
from vessel.contracts.hooks import ExecHook, PutHook, RemoveHook
from vessel.contracts.subjects import Message
from vessel.stopping import cancel_and_wait

pytestmark = pytest.mark.timeout(60)


def valid(**fields: Any) -> dict[str, Any]:
    return {
        "id": "quiesce",
        "app_id": "c1.shop.web",
        "stage": "pre-snapshot",
        "container_name": "^db$",
        "command": ["sh", "-c", "sync"],
    } | fields


def test_a_valid_hook_has_defaults() -> None:
    hook = ExecHook.model_validate(valid())
    assert (hook.timeout_seconds, hook.on_failure, hook.builtin) == (30, "fail", None)
    assert hook.key == "c1.shop.web.quiesce"
    freeze = ExecHook.model_validate(
        valid(command=[], builtin="fsfreeze", container_name="", container_image="postgres")
    )
    assert (freeze.builtin, freeze.command, freeze.container_name) == ("fsfreeze", [], "")


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"container_name": "("}, "not a valid regular expression"),
        ({"container_image": "[a-"}, "not a valid regular expression"),
        ({"container_name": ""}, "set container_name or container_image"),
        ({"command": []}, "exactly one of command (non-empty) and builtin"),
        ({"builtin": "fsfreeze"}, "exactly one of command (non-empty) and builtin"),
        ({"builtin": "sync"}, "builtin"),
        ({"command": ["", "x"]}, "the program (first element) must not be empty"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"timeout_seconds": 3601}, "timeout_seconds"),
        ({"on_failure": "ignore"}, "on_failure"),
        ({"stage": "pre-restore"}, "stage"),
        ({"app_id": "web"}, "app_id"),
    ],
)
def test_invalid_hooks_are_refused_naming_the_problem(
    fields: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        ExecHook.model_validate(valid(**fields))


async def events_of(
    bus: Bus, message: Message, since: datetime, app_id: str, quiet: float = 1.0
) -> list[Any]:
    """Events of one kind about one app's hooks since `since`, once none came for `quiet`."""
    found: list[Any] = []
    stream = bus.tail(message.subject, since=since)
    try:
        while True:
            _, event = await asyncio.wait_for(anext(stream), timeout=quiet)
            if event.data.get("app_id") == app_id:
                found.append(event.data)
    except TimeoutError:
        return found
    finally:
        await stream.aclose()


async def until(condition: Any, within: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_put_and_remove_commands_store_and_announce(bus: Bus) -> None:
    store = HookStore(await bus.kv(state.HOOKS.name))
    commands = HookCommands(bus, store)
    # The consumer as protection's inbox runs it.
    consumer = await bus.consume(
        "protection-hooks",
        {subjects.PUT_HOOK: commands.on_put, subjects.REMOVE_HOOK: commands.on_remove},
    )
    try:
        app_id = f"c1.shop-{uuid.uuid4().hex[:8]}.web"
        since = datetime.now(UTC)
        hook = ExecHook.model_validate(valid(app_id=app_id, on_failure="continue"))
        await bus.publish(subjects.PUT_HOOK, PutHook(operation_id="op-1", hook=hook))
        await until(lambda: store.get(app_id, "quiesce"))
        assert await store.get(app_id, "quiesce") == hook
        assert await store.for_app(app_id) == [hook]
        changed = await events_of(bus, subjects.HOOK_CHANGED, since, app_id, quiet=0.5)
        assert [ExecHook.model_validate(c) for c in changed] == [hook]

        removal = RemoveHook(operation_id="op-2", app_id=app_id, hook_id="quiesce")
        await bus.publish(subjects.REMOVE_HOOK, removal)

        async def gone() -> bool:
            return await store.get(app_id, "quiesce") is None

        await until(gone)
        assert await store.for_app(app_id) == []
        await commands.on_remove(removal)  # a redelivery finds nothing left to announce
        removed = await events_of(bus, subjects.HOOK_REMOVED, since, app_id)
        assert [ExecHook.model_validate(r) for r in removed] == [hook]
    finally:
        await cancel_and_wait([consumer])


async def test_lookup_by_app_and_stage_in_id_order(bus: Bus) -> None:
    store = HookStore(await bus.kv(f"t_hooks_{uuid.uuid4().hex[:8]}"))
    commands = HookCommands(bus, store)
    app_id = "c1.shop.web"
    hooks = [
        ExecHook.model_validate(valid(id="b", stage="post-snapshot")),
        ExecHook.model_validate(valid(id="c")),
        ExecHook.model_validate(valid(id="a")),
        # an app whose name starts with the first one's, followed by a dot
        ExecHook.model_validate(valid(id="a", app_id="c1.shop.web.v2")),
    ]
    for i, hook in enumerate(hooks):
        await commands.on_put(PutHook(operation_id=f"op-{i}", hook=hook))
    assert [h.id for h in await store.for_app(app_id)] == ["a", "b", "c"]
    assert [h.id for h in await store.for_app(app_id, "pre-snapshot")] == ["a", "c"]
    assert [h.app_id for h in await store.for_app("c1.shop.web.v2")] == ["c1.shop.web.v2"]
    replaced = hooks[2].model_copy(update={"timeout_seconds": 90})
    await commands.on_put(PutHook(operation_id="op-9", hook=replaced))
    assert await store.get(app_id, "a") == replaced
    await commands.on_remove(RemoveHook(operation_id="op-10", app_id=app_id, hook_id="a"))
    await commands.on_remove(RemoveHook(operation_id="op-11", app_id=app_id, hook_id="a"))
    assert [h.id for h in await store.for_app(app_id)] == ["b", "c"]
