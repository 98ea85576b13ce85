"""What discovery listens to, in start order (on the hub; `agent_rows` as a cluster's own
agent).

nats-server's questions about clusters joining by token (`joining`); queries from the
gateway; the watches of every cluster (each cluster's informers and
health reporter run from its registration until it is removed, and all of them stop with
this row); the heartbeats of the clusters' own agents; and the commands about clusters
and user-defined apps. Stopped in the same order, the command consumer last (see
`main.stop`).
"""

from __future__ import annotations

from functools import partial

from services.discovery import queries
from services.discovery.cluster import WatchedCluster
from services.discovery.context import DiscoveryContext
from services.discovery.heartbeats import AgentHeartbeats
from services.discovery.registry import ClusterRegistry
from vessel.bus.inbox import Consumer, Loop, Responder, Row
from vessel.contracts import permissions, subjects


def agent_rows(registry: ClusterRegistry, cluster: WatchedCluster) -> list[Row]:
    """As a cluster's own agent: its watches (and agent calls), and its user-defined apps
    followed in KV. No commands and no queries: those are the hub's."""
    return [
        Loop("cluster watch", registry.run),
        Loop("app definitions", partial(registry.follow_definitions, cluster)),
    ]


def rows(ctx: DiscoveryContext) -> list[Row]:
    registry = ClusterRegistry(ctx)
    joins = (
        [Responder(permissions.CALLOUT, ctx.joins.authorize, queue=f"{ctx.durable}-callout")]
        if ctx.joins is not None and ctx.joins.seed is not None
        else []
    )
    return [
        *joins,
        Responder(queries.SERVED, partial(queries.respond, ctx), queue=f"{ctx.durable}-queries"),
        Loop("cluster watches", registry.run),
        Loop("agent heartbeats", AgentHeartbeats(ctx).run),
        Consumer(
            ctx.durable,
            {
                subjects.REGISTER_CLUSTER: registry.register,
                subjects.UPDATE_CLUSTER: registry.register,
                subjects.REMOVE_CLUSTER: registry.remove,
                subjects.DEFINE_APP: registry.define,
                subjects.UNDEFINE_APP: registry.undefine,
            },
        ),
    ]
