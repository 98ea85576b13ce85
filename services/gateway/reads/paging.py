"""Pagination of list calls: `page_size` (default 100, at most 1000) and opaque page tokens.

A token is the sort key of the last item handed out, so walking the pages visits every
item once even while items are added (a new item sorting before the token is simply not
seen by that walk). Tokens are not secrets, only opaque: a token that does not decode is
INVALID_ARGUMENT naming `page_token`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import TypeVar

from services.gateway.errors import invalid

T = TypeVar("T")
DEFAULT_PAGE = 100
MAX_PAGE = 1000


def page_size(value: int) -> int:
    if value == 0:
        return DEFAULT_PAGE
    if not 0 < value <= MAX_PAGE:
        raise invalid([("page_size", f"{value} is not in [1, {MAX_PAGE}] (0: {DEFAULT_PAGE})")])
    return value


def encode(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode(token: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid([("page_token", f"{token!r} is not a token this API handed out")]) from None


def paginate(
    items: Sequence[T],
    key: Callable[[T], str],
    size: int,
    token: str,
    *,
    newest_first: bool = False,
) -> tuple[list[T], str]:
    """One page of `items` ordered by `key` (descending when `newest_first`), after the
    item `token` names; and the token of the next page ("" on the last)."""
    ordered = sorted(items, key=key, reverse=newest_first)
    if token:
        after = decode(token)
        ordered = [i for i in ordered if (key(i) < after if newest_first else key(i) > after)]
    page = ordered[:size]
    more = len(ordered) > size
    return page, encode(key(page[-1])) if more and page else ""
