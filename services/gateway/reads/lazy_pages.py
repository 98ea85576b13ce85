"""Pages of stored objects loaded one by one (KV records, catalog objects in a bucket).

Like `paging.paginate`, but only the objects a page needs are read: filtering and scope
need each object's content, and reading a whole bucket's catalog per call does not scale.
Page size and tokens are `paging`'s, so every list of the API behaves the same.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from services.gateway.reads import paging

T = TypeVar("T")


async def load_page(
    keys: Iterable[str],
    load: Callable[[str], Awaitable[T | None]],
    size: int,
    token: str,
) -> tuple[list[T], str]:
    """(items, next token): `load` each key after the token's, in key order, until `size`
    items are kept (None: skipped, e.g. filtered out or out of scope), and one more to
    know whether another page exists."""
    limit = paging.page_size(size)
    after = paging.decode(token) if token else ""
    items: list[T] = []
    last = ""
    for key in sorted(k for k in keys if k > after):
        item = await load(key)
        if item is None:
            continue
        if len(items) == limit:
            return items, paging.encode(last)
        items.append(item)
        last = key
    return items, ""
