"""Queries the gateway asks discovery, over core NATS request/reply.

Subjects are `vessel.query.discovery.<query>`; replicas of discovery share one queue
group, so each request is answered once. Pure functions over the published records;
`answer` decodes a request, runs the query and encodes the reply (`QueryFailed` naming
the problem for a bad request), and `respond` answers from the shared context.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping

from pydantic import ValidationError

from services.discovery.context import DiscoveryContext
from services.discovery.joining import JoinError
from vessel.bus.nats_port import Bus
from vessel.contracts import queries
from vessel.contracts.events import (
    AppDetail,
    AppLookup,
    AppPage,
    AppQuery,
    AppRecord,
    ClusterList,
    ClusterQuery,
    ClusterRecord,
    JoinTokenRequest,
    QueryFailed,
)
from vessel.contracts.models import Payload

SERVED = "vessel.query.discovery.>"
"""Every query discovery answers."""


class QueryError(ValueError):
    """A request that cannot be answered; the message says why."""


def _token(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def _after(token: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise QueryError(f"page_token {token!r} is not one this service handed out") from None


def parse_label_filter(text: str) -> tuple[str, str | None]:
    """`key=value` -> (key, value); `key` -> (key, None). ValueError names the problem."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not key:
        raise ValueError(f"label filter {text!r}: expected key=value or key")
    return key, (value.strip() if sep else None)


def _has_label(app: AppRecord, key: str, value: str | None) -> bool:
    for labels in (app.labels, app.selector):
        if key in labels and (value is None or labels[key] == value):
            return True
    return False


def list_apps(apps: Iterable[AppRecord], query: AppQuery) -> AppPage:
    """Apps matching every filter given, ordered by id, one page at a time."""
    label: tuple[str, str | None] | None = None
    if query.label:
        try:
            label = parse_label_filter(query.label)
        except ValueError as exc:
            raise QueryError(str(exc)) from None
    matching = sorted(
        (
            a
            for a in apps
            if (query.cluster is None or a.cluster == query.cluster)
            and (query.namespace is None or query.namespace in (a.namespace, *a.namespaces))
            and (query.state is None or a.state == query.state)
            and (label is None or _has_label(a, *label))
        ),
        key=lambda a: a.id,
    )
    start = 0
    if query.page_token:
        after = _after(query.page_token)
        start = next((i for i, a in enumerate(matching) if a.id > after), len(matching))
    page = matching[start : start + query.page_size]
    more = start + query.page_size < len(matching)
    return AppPage(
        apps=page, next_page_token=_token(page[-1].id) if more else "", total=len(matching)
    )


def get_app(apps: Mapping[str, AppRecord], lookup: AppLookup) -> AppDetail:
    app = apps.get(lookup.id)
    if app is None:
        raise QueryError(f"app {lookup.id!r} is not in the inventory")
    return AppDetail(app=app)


def list_clusters(clusters: Iterable[ClusterRecord], query: ClusterQuery) -> ClusterList:
    return ClusterList(
        clusters=[c for c in clusters if query.state is None or c.state == query.state]
    )


def answer(
    subject: str,
    body: bytes,
    apps: Callable[[], Mapping[str, AppRecord]],
    clusters: Callable[[], Iterable[ClusterRecord]],
) -> bytes:
    """The encoded reply to a request on `subject`."""
    reply: Payload
    try:
        text = body.strip() or b"{}"
        if subject == queries.QUERY_APPS:
            reply = list_apps(apps().values(), AppQuery.model_validate_json(text))
        elif subject == queries.QUERY_APP:
            reply = get_app(apps(), AppLookup.model_validate_json(text))
        elif subject == queries.QUERY_CLUSTERS:
            reply = list_clusters(clusters(), ClusterQuery.model_validate_json(text))
        else:
            raise QueryError(f"no query is served on {subject}")
    except ValidationError as exc:
        reply = QueryFailed.invalid(subject, exc)
    except QueryError as exc:
        reply = QueryFailed(error=str(exc))
    return reply.model_dump_json().encode()


async def respond(ctx: DiscoveryContext, subject: str, body: bytes) -> bytes:
    """The reply to a request on `subject`, from the clusters discovery watches (a join
    token from its joins)."""
    if subject != queries.QUERY_JOIN_TOKEN:
        return answer(subject, body, ctx.apps, ctx.cluster_records)
    reply: Payload
    try:
        if ctx.joins is None:
            raise JoinError("this discovery is a cluster's agent; join tokens are the hub's")
        reply = await ctx.joins.issue(JoinTokenRequest.model_validate_json(body))
    except ValidationError as exc:
        reply = QueryFailed.invalid(subject, exc)
    except JoinError as exc:
        reply = QueryFailed(error=str(exc))
    return reply.model_dump_json().encode()


async def request(bus: Bus, subject: str, body: bytes, wait: float = 5.0) -> bytes:
    """Send `body` on `subject` and return the reply; TimeoutError after `wait` seconds."""
    return await bus.request(subject, body, wait=wait)
