"""The cluster registry and user-defined apps, driven by discovery's commands.

On the hub: register / update / remove clusters and define / undefine apps. A register or
update command never fails on bad input: the problem becomes the cluster's condition
(InvalidKubeconfig naming the file, line or field), so a command carrying a kubeconfig is
never retried nor dead-lettered (which would copy its payload into the events stream).
Configured clusters (`settings.clusters`) are registered at start, but for those whose
agent runs in the cluster (`agent: cluster`); clusters known from KV are resumed with the
kubeconfig kept under the state directory. A cluster's own agent (`load_agent`) watches
its cluster alone and follows its user-defined apps in KV, where the hub stores them.
Everything it changes is in the `DiscoveryContext`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import defaultdict
from pathlib import Path

from pydantic import ValidationError

from services.discovery import credentials
from services.discovery.cluster import Connection, Source, WatchedCluster
from services.discovery.context import DiscoveryContext
from services.discovery.credentials import KubeconfigError
from services.discovery.userapps import definition_id
from vessel.bus.errors import PermanentError
from vessel.contracts import subjects
from vessel.contracts.commands import DefineApp, RegisterCluster, RemoveCluster, UndefineApp
from vessel.contracts.events import AppRecord, ClusterRecord
from vessel.contracts.models import app_id

log = logging.getLogger("vessel.discovery")


def _fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class ClusterRegistry:
    """The handlers of discovery's commands, and the start and stop of its clusters."""

    def __init__(self, ctx: DiscoveryContext) -> None:
        self.ctx = ctx

    # --- start and stop ------------------------------------------------------------------

    async def load(self) -> None:
        """Watch the configured clusters and resume those known from KV; before the first
        command is consumed, so that a command finds every cluster."""
        ctx = self.ctx
        records = {r.id: r for r in await ctx.stores.clusters.read_all()}
        published: dict[str, dict[str, AppRecord]] = defaultdict(dict)
        for app in await ctx.stores.apps.read_all():
            published[app.cluster][app.id] = app
        definitions: dict[str, dict[str, DefineApp]] = defaultdict(dict)
        for d in await ctx.stores.definitions.read_all():
            definitions[d.cluster][definition_id(d)] = d
        in_cluster = {c.id for c in ctx.settings.clusters if c.agent == "cluster"}
        for c in ctx.settings.clusters:
            if c.id in in_cluster:
                continue  # its own agent watches it
            cluster = self._watch(c.id, "config", records.get(c.id))
            cluster.published, cluster.definitions = published[c.id], definitions[c.id]
            await cluster.start(self._from_file(c.id, c.kubeconfig), new=c.id not in records)
        for cid, record in records.items():
            if cid in ctx.watched or cid in in_cluster or record.source == "agent":
                continue
            cluster = self._watch(cid, record.source, record)
            cluster.published, cluster.definitions = published[cid], definitions[cid]
            if record.source == "config":  # no longer in the settings
                await self._forget(cluster)
                continue
            path = ctx.credentials.resolve(cid)
            await cluster.start(
                self._from_file(cid, path)
                if path is not None
                else Connection(
                    None,
                    record.server,
                    problem=f"cluster {cid}: no kubeconfig is kept under "
                    f"{ctx.credentials.root}; register the cluster again",
                )
            )

    async def load_agent(self, cluster_id: str) -> WatchedCluster:
        """As the agent of `cluster_id` in that cluster: watch it alone, with the settings'
        kubeconfig (its ServiceAccount's), resuming what it published."""
        ctx = self.ctx
        config = ctx.settings.cluster(cluster_id)
        record = await ctx.stores.clusters.get(cluster_id)
        cluster = self._watch(cluster_id, "agent", record)
        cluster.published = {a.id: a for a in await ctx.stores.apps.read_all(cluster_id)}
        cluster.definitions = {
            definition_id(d): d for d in await ctx.stores.definitions.read_all(cluster_id)
        }
        await cluster.start(self._from_file(cluster_id, config.kubeconfig), new=record is None)
        return cluster

    async def follow_definitions(self, cluster: WatchedCluster) -> None:
        """Keep an agent's user-defined apps as the hub stores them in KV."""
        definitions = dict(cluster.definitions)
        async for key, value in self.ctx.stores.definitions.kv.watch(cluster.id):
            if value is None:
                definitions.pop(key, None)
            else:
                try:
                    definitions[key] = DefineApp.model_validate_json(value)
                except ValidationError as exc:
                    log.warning("KV app-definitions %s is not a DefineApp, ignored: %s", key, exc)
                    continue
            if definitions != cluster.definitions:
                cluster.set_definitions(definitions)

    async def run(self) -> None:
        """Holds every cluster's watches until cancelled, then stops them all."""
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def close(self) -> None:
        for cluster in self.ctx.watched.values():
            await cluster.stop()

    def _watch(
        self, cid: str, source: Source, record: ClusterRecord | None = None
    ) -> WatchedCluster:
        ctx = self.ctx
        cluster = WatchedCluster(
            cid,
            source,
            bus=ctx.bus,
            records=ctx.stores.clusters,
            publisher=ctx.publisher,
            tuning=ctx.tuning,
            record=record,
        )
        ctx.watched[cid] = cluster
        return cluster

    def _from_file(self, cid: str, path: Path) -> Connection:
        try:
            text = credentials.read(path)
            info = credentials.parse(text, f"kubeconfig file {path}")
        except KubeconfigError as exc:
            return Connection(None, problem=f"cluster {cid}: {exc}")
        self.ctx.fingerprints[cid] = _fingerprint(f"{path}\n{text}")
        return Connection(path, info.server, secrets=tuple(info.secrets))

    # --- commands ------------------------------------------------------------------------

    async def register(self, cmd: RegisterCluster) -> None:
        """Register, or update, a cluster; never raises (see module doc)."""
        try:
            await self._register(cmd)
        except Exception:  # never retried, so never dead-lettered with its kubeconfig
            log.exception("cluster %s: register/update failed", cmd.cluster)

    async def _register(self, cmd: RegisterCluster) -> None:
        cid = cmd.cluster
        fingerprints = self.ctx.fingerprints
        before = fingerprints.get(cid)
        connection = self._connect(cmd)
        cluster = self.ctx.watched.get(cid)
        if cluster is None:
            await self._watch(cid, "registered").start(connection, new=True)
            return
        unchanged = not connection.problem and before == fingerprints.get(cid)
        if unchanged and cluster.inventory is not None:
            return  # a redelivered or repeated command: keep watching as before
        await cluster.start(connection)
        log.info("cluster %s updated (%s)", cid, connection.server or "no server")

    def _connect(self, cmd: RegisterCluster) -> Connection:
        cid, store = cmd.cluster, self.ctx.credentials
        self.ctx.fingerprints.pop(cid, None)
        if (cmd.kubeconfig is None) == (cmd.kubeconfig_path is None):
            store.forget(cid)
            return Connection(
                None,
                problem=f"cluster {cid}: give exactly one of kubeconfig_path and kubeconfig",
            )
        try:
            if cmd.kubeconfig is not None:
                info = credentials.parse(cmd.kubeconfig, "inline kubeconfig")
                path = store.store_inline(cid, cmd.kubeconfig)
                self.ctx.fingerprints[cid] = _fingerprint(cmd.kubeconfig)
                return Connection(path, info.server, secrets=tuple(info.secrets))
            given = Path(str(cmd.kubeconfig_path))
            connection = self._from_file(cid, given)
            if not connection.problem:
                store.store_reference(cid, given)
            else:
                store.forget(cid)
            return connection
        except KubeconfigError as exc:
            store.forget(cid)
            return Connection(None, problem=f"cluster {cid}: {exc}")

    async def remove(self, cmd: RemoveCluster) -> None:
        cluster = self.ctx.watched.pop(cmd.cluster, None)
        if cluster is None:
            record = await self.ctx.stores.clusters.get(cmd.cluster)
            joins = self.ctx.joins
            if joins is not None and await joins.revoke(cmd.cluster):
                await self._forget(await self._joined(cmd.cluster, record))
                return
            if record is not None and record.source == "agent":
                log.warning(
                    "cluster %s is watched by its own agent in the cluster: uninstall the "
                    "agent there to remove it",
                    cmd.cluster,
                )
                return
            log.info("cluster %s is not registered; nothing to remove", cmd.cluster)
            return
        await self._forget(cluster)

    async def _joined(self, cid: str, record: ClusterRecord | None) -> WatchedCluster:
        """A cluster its own agent watched, with what that agent published, to forget."""
        cluster = self._watch(cid, "agent", record)
        cluster.published = {a.id: a for a in await self.ctx.stores.apps.read_all(cid)}
        cluster.definitions = {
            definition_id(d): d for d in await self.ctx.stores.definitions.read_all(cid)
        }
        return cluster

    async def _forget(self, cluster: WatchedCluster) -> None:
        ctx = self.ctx
        ctx.watched.pop(cluster.id, None)
        await cluster.stop()
        for record in list(cluster.published.values()):
            await ctx.publisher.remove(record)
        cluster.published.clear()
        for key in cluster.definitions:
            await ctx.stores.definitions.delete(key)
        ctx.credentials.forget(cluster.id)
        ctx.fingerprints.pop(cluster.id, None)
        await ctx.stores.clusters.delete(cluster.id)
        await cluster.announce(subjects.CLUSTER_REMOVED)
        log.info("cluster %s removed", cluster.id)

    async def define(self, cmd: DefineApp) -> None:
        cluster = self.ctx.watched.get(cmd.cluster)
        if cluster is None:
            record = await self.ctx.stores.clusters.get(cmd.cluster)
            if record is None or record.source != "agent":
                raise PermanentError(
                    f"define app {cmd.namespace}/{cmd.name}: cluster {cmd.cluster!r} is not "
                    "registered"
                )
        key = definition_id(cmd)
        await self.ctx.stores.definitions.put(cmd)  # the cluster's own agent follows it here
        if cluster is not None:
            cluster.set_definitions({**cluster.definitions, key: cmd})
        if cmd.unmanaged:
            log.info("app %s unmanaged: left out of the inventory", key)
            return
        log.info(
            "app %s defined over %s",
            key,
            ", ".join(s.namespace for s in cmd.include) or cmd.namespace,
        )

    async def undefine(self, cmd: UndefineApp) -> None:
        key = app_id(cmd.cluster, cmd.namespace, cmd.name)
        cluster = self.ctx.watched.get(cmd.cluster)
        await self.ctx.stores.definitions.delete(key)
        if cluster is None or key not in cluster.definitions:
            log.info("app %s is not user-defined; nothing to undefine", key)
            return
        cluster.set_definitions({k: d for k, d in cluster.definitions.items() if k != key})
        log.info("app %s undefined (unmanaged)", key)
