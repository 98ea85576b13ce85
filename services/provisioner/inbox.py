"""What the provisioner of one cluster listens to, in start order.

The reconciler (informers, work queue, resync, auto-grow) and the capacity metrics run
from the start. Backend commands, group snapshot commands and the queries wait until the
reconciler's caches are synced (`Provisioner.ready`): before that a command would be
judged against empty caches, and a query is better unanswered (the gateway is told nobody
serves it) than answered from them.
"""

from __future__ import annotations

import asyncio
from functools import partial

from services.provisioner import queries
from services.provisioner.backend_admin import BackendAdmin
from services.provisioner.capacity import report_capacity
from services.provisioner.context import ProvisionerContext
from services.provisioner.controller import Provisioner
from services.provisioner.group_snapshots import GroupSnapshots
from vessel.bus.inbox import Consumer, Loop, Responder, Row, listen
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects


def inbox(bus: Bus, provisioner: Provisioner, admin: BackendAdmin) -> list[Row]:
    env = provisioner.env
    return [
        Loop("reconcile claims, PVs, volumes and snapshots", provisioner.run),
        Loop("report capacity metrics", partial(report_capacity, env)),
        once_ready(
            bus,
            provisioner.ready,
            [
                backend_commands(env, admin),
                group_snapshot_commands(env, provisioner.groups),
                query_responder(env),
            ],
        ),
    ]


def backend_commands(env: ProvisionerContext, admin: BackendAdmin) -> Consumer:
    cluster = env.cluster_id
    return Consumer(
        f"provisioner-{cluster}-backends",
        {
            subjects.ADD_BACKEND: admin.add,
            subjects.UPDATE_BACKEND: admin.update,
            subjects.REMOVE_BACKEND: admin.remove,
        },
        cluster=cluster,
    )


def group_snapshot_commands(env: ProvisionerContext, groups: GroupSnapshots) -> Consumer:
    cluster = env.cluster_id
    return Consumer(
        f"provisioner-{cluster}-groups", {subjects.SNAPSHOT_GROUP: groups.take}, cluster=cluster
    )


def query_responder(env: ProvisionerContext) -> Responder:
    return Responder(
        queries.subject_for(env.cluster_id),
        partial(queries.answer, env),
        queue=f"provisioner-{env.cluster_id}",
    )


def once_ready(bus: Bus, ready: asyncio.Event, rows: list[Row]) -> Loop:
    """The rows, started once `ready` is set."""

    async def run() -> None:
        await ready.wait()
        await listen(bus, rows)

    return Loop("commands and queries, once the caches are synced", run)
