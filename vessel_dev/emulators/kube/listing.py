"""List responses: ``limit``/``continue`` pagination and the ``<Kind>List`` envelope.

A continue token records the list's resourceVersion and the last key returned. Later
pages are read from the current store rather than a snapshot at that resourceVersion
(the real server reads etcd at the original revision), so objects written between
pages can show up or disappear; the list's metadata.resourceVersion is the original one.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass

from vessel.kube.objects import KubeObject
from vessel_dev.emulators.kube import errors
from vessel_dev.emulators.kube.kinds import Kind
from vessel_dev.emulators.kube.objects import meta


@dataclass(frozen=True, slots=True)
class Page:
    items: list[KubeObject]
    resource_version: int
    continue_token: str
    remaining: int | None


def encode_continue(rv: int, namespace: str, name: str) -> str:
    raw = json.dumps({"v": 1, "rv": rv, "start": [namespace, name]}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        namespace, name = data["start"]
        return int(data["rv"]), (str(namespace), str(name))
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise errors.bad_request(f"continue key is not valid: {exc}") from exc


def paginate(
    items: Iterable[KubeObject], store_rv: int, limit: int, token: str, count_remaining: bool
) -> Page:
    """Take one page from ``items`` (already in key order and filtered)."""
    rv, after = store_rv, None
    if token:
        rv, after = decode_continue(token)
    if after is not None:
        items = (o for o in items if _key(o) > after)
    iterator = iter(items)
    page = list(itertools.islice(iterator, limit)) if limit > 0 else list(iterator)
    rest = list(iterator) if limit > 0 else []
    if not rest:
        return Page(page, rv, "", None)
    last = _key(page[-1])
    return Page(page, rv, encode_continue(rv, *last), len(rest) if count_remaining else None)


def _key(obj: KubeObject) -> tuple[str, str]:
    metadata = meta(obj)
    return metadata.get("namespace", ""), metadata["name"]


def list_document(kind: Kind, page: Page) -> KubeObject:
    metadata: KubeObject = {"resourceVersion": str(page.resource_version)}
    if page.continue_token:
        metadata["continue"] = page.continue_token
    if page.remaining is not None:
        metadata["remainingItemCount"] = page.remaining
    return {
        "kind": kind.list_kind,
        "apiVersion": kind.api_version,
        "metadata": metadata,
        "items": page.items,
    }
