"""KV records of other services read whole, by the first part of their key (the cluster,
for the provisioners' per-cluster records)."""

from __future__ import annotations

from collections.abc import Iterable

from vessel.bus.nats_port import KeyValue


async def values_under(kv: KeyValue, prefixes: Iterable[str]) -> list[bytes]:
    """The values of every key `<prefix>.<…>` of one of `prefixes`."""
    wanted = tuple(f"{p}." for p in prefixes)
    values = []
    for key in await kv.keys():
        if not key.startswith(wanted):
            continue
        entry = await kv.get(key)
        if entry is not None and entry.value:
            values.append(entry.value)
    return values
