"""Listing a KV bucket's keys often must not exhaust the server's consumer limit."""

from __future__ import annotations

import uuid

from vessel.bus.nats_port import Bus


async def test_listing_keys_many_times_leaves_no_consumers(bus: Bus) -> None:
    name = f"keys-{uuid.uuid4().hex[:8]}"
    kv = await bus.kv(name)
    assert await kv.keys() == []
    await kv.put("a", b"1")
    await kv.put("b", b"2")
    await kv.delete("b")
    for _ in range(1200):  # the server refuses the 1001st consumer of a stream
        keys = await kv.keys()
    assert keys == ["a"]
    info = await bus.js.stream_info(f"KV_{name}")
    assert info.state.consumer_count == 0


async def test_a_key_nats_cannot_store_reads_as_absent(bus: Bus) -> None:
    kv = await bus.kv(f"keys-{uuid.uuid4().hex[:8]}")
    for key in ("0.", "a..b", "spaces are invalid", ""):
        assert await kv.get(key) is None
