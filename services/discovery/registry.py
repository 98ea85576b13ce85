"""The cluster registry and user-defined apps, driven by discovery's commands.

Register / update / remove clusters and define / undefine apps. A register or update
command never fails on bad input: the problem becomes the cluster's condition
(InvalidKubeconfig naming the file, line or field), so a command carrying a kubeconfig is
never retried nor dead-lettered (which would copy its payload into the events stream).
Configured clusters (`settings.clusters`) are registered at start; clusters known from
KV are resumed with the kubeconfig kept under the state directory.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from services.discovery import credentials
from services.discovery.credentials import CredentialStore, KubeconfigError
from services.discovery.publish import AppPublisher
from services.discovery.runtime import ClusterRuntime, Connection, Tuning
from services.discovery.userapps import definition_id
from vessel.bus.errors import PermanentError
from vessel.bus.nats_port import Bus, KeyValue
from vessel.config import ClusterConfig
from vessel.contracts import subjects
from vessel.contracts.commands import DefineApp, RegisterCluster, RemoveCluster, UndefineApp
from vessel.contracts.events import AppRecord, ClusterRecord

log = logging.getLogger("vessel.discovery")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Buckets:
    inventory: KeyValue
    clusters: KeyValue
    definitions: KeyValue


async def _read(kv: KeyValue, model: type[M], prefix: str = "") -> list[M]:
    """Every value of the bucket (under `prefix`); one that no longer parses is skipped."""
    out = []
    for key in await kv.keys():
        entry = await kv.get(key) if key.startswith(prefix) else None
        if entry is None:
            continue
        try:
            out.append(model.model_validate_json(entry.value))
        except ValidationError as exc:
            log.warning("KV key %s is not a valid %s, skipped: %s", key, model.__name__, exc)
    return out


def _fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class ClusterRegistry:
    def __init__(self, bus: Bus, kv: Buckets, store: CredentialStore, tuning: Tuning) -> None:
        self.bus, self.kv, self.store, self.tuning = bus, kv, store, tuning
        self.publisher = AppPublisher(bus, kv.inventory)
        self.runtimes: dict[str, ClusterRuntime] = {}
        self._fingerprints: dict[str, str] = {}

    # --- start and stop ------------------------------------------------------------------

    async def load(self, configured: list[ClusterConfig]) -> None:
        records = {r.id: r for r in await _read(self.kv.clusters, ClusterRecord)}
        published: dict[str, dict[str, AppRecord]] = defaultdict(dict)
        for app in await _read(self.kv.inventory, AppRecord, prefix="apps."):
            published[app.cluster][app.id] = app
        definitions: dict[str, dict[str, DefineApp]] = defaultdict(dict)
        for d in await _read(self.kv.definitions, DefineApp):
            definitions[d.cluster][definition_id(d)] = d
        for c in configured:
            runtime = self._runtime(c.id, "config", records.get(c.id))
            runtime.published, runtime.definitions = published[c.id], definitions[c.id]
            await runtime.start(self._from_file(c.id, c.kubeconfig), new=c.id not in records)
        for cid, record in records.items():
            if cid in self.runtimes:
                continue
            runtime = self._runtime(cid, record.source, record)
            runtime.published, runtime.definitions = published[cid], definitions[cid]
            if record.source == "config":  # no longer in the settings
                await self._forget(runtime)
                continue
            path = self.store.resolve(cid)
            await runtime.start(
                self._from_file(cid, path)
                if path is not None
                else Connection(
                    None,
                    record.server,
                    problem=f"cluster {cid}: no kubeconfig is kept under {self.store.root}; "
                    "register the cluster again",
                )
            )

    async def close(self) -> None:
        for runtime in self.runtimes.values():
            await runtime.stop()

    def _runtime(
        self, cid: str, source: str, record: ClusterRecord | None = None
    ) -> ClusterRuntime:
        runtime = ClusterRuntime(
            cid,
            "config" if source == "config" else "registered",
            bus=self.bus,
            clusters=self.kv.clusters,
            publisher=self.publisher,
            tuning=self.tuning,
            record=record,
        )
        self.runtimes[cid] = runtime
        return runtime

    def _from_file(self, cid: str, path: Path) -> Connection:
        try:
            text = credentials.read(path)
            info = credentials.parse(text, f"kubeconfig file {path}")
        except KubeconfigError as exc:
            return Connection(None, problem=f"cluster {cid}: {exc}")
        self._fingerprints[cid] = _fingerprint(f"{path}\n{text}")
        return Connection(path, info.server, secrets=tuple(info.secrets))

    # --- commands ------------------------------------------------------------------------

    async def register(self, cmd: RegisterCluster) -> None:
        """Register, or update, a cluster; never raises on bad input (see module doc)."""
        cid = cmd.cluster
        before = self._fingerprints.get(cid)
        connection = self._connect(cmd)
        runtime = self.runtimes.get(cid)
        if runtime is None:
            await self._runtime(cid, "registered").start(connection, new=True)
            return
        unchanged = not connection.problem and before == self._fingerprints.get(cid)
        if unchanged and runtime.inventory is not None:
            return  # a redelivered or repeated command: keep watching as before
        await runtime.start(connection)
        log.info("cluster %s updated (%s)", cid, connection.server or "no server")

    def _connect(self, cmd: RegisterCluster) -> Connection:
        cid = cmd.cluster
        self._fingerprints.pop(cid, None)
        if (cmd.kubeconfig is None) == (cmd.kubeconfig_path is None):
            self.store.forget(cid)
            return Connection(
                None,
                problem=f"cluster {cid}: give exactly one of kubeconfig_path and kubeconfig",
            )
        try:
            if cmd.kubeconfig is not None:
                info = credentials.parse(cmd.kubeconfig, "inline kubeconfig")
                path = self.store.store_inline(cid, cmd.kubeconfig)
                self._fingerprints[cid] = _fingerprint(cmd.kubeconfig)
                return Connection(path, info.server, secrets=tuple(info.secrets))
            given = Path(str(cmd.kubeconfig_path))
            connection = self._from_file(cid, given)
            if not connection.problem:
                self.store.store_reference(cid, given)
            else:
                self.store.forget(cid)
            return connection
        except KubeconfigError as exc:
            self.store.forget(cid)
            return Connection(None, problem=f"cluster {cid}: {exc}")

    async def remove(self, cmd: RemoveCluster) -> None:
        runtime = self.runtimes.pop(cmd.cluster, None)
        if runtime is None:
            log.info("cluster %s is not registered; nothing to remove", cmd.cluster)
            return
        await self._forget(runtime)

    async def _forget(self, runtime: ClusterRuntime) -> None:
        self.runtimes.pop(runtime.id, None)
        await runtime.stop()
        for record in list(runtime.published.values()):
            await self.publisher.remove(record)
        runtime.published.clear()
        for key in runtime.definitions:
            await self.kv.definitions.delete(key)
        self.store.forget(runtime.id)
        self._fingerprints.pop(runtime.id, None)
        await self.kv.clusters.delete(runtime.id)
        await runtime.announce(subjects.CLUSTER_REMOVED)
        log.info("cluster %s removed", runtime.id)

    async def define(self, cmd: DefineApp) -> None:
        runtime = self.runtimes.get(cmd.cluster)
        if runtime is None:
            raise PermanentError(
                f"define app {cmd.namespace}/{cmd.name}: cluster {cmd.cluster!r} is not registered"
            )
        key = definition_id(cmd)
        await self.kv.definitions.put(key, cmd.model_dump_json().encode())
        runtime.set_definitions({**runtime.definitions, key: cmd})
        log.info(
            "app %s defined over %s",
            key,
            ", ".join(s.namespace for s in cmd.include) or cmd.namespace,
        )

    async def undefine(self, cmd: UndefineApp) -> None:
        key = f"{cmd.cluster}.{cmd.namespace}.{cmd.name}"
        runtime = self.runtimes.get(cmd.cluster)
        await self.kv.definitions.delete(key)
        if runtime is None or key not in runtime.definitions:
            log.info("app %s is not user-defined; nothing to undefine", key)
            return
        runtime.set_definitions({k: d for k, d in runtime.definitions.items() if k != key})
        log.info("app %s undefined (unmanaged)", key)

    # --- reads for queries ---------------------------------------------------------------

    def apps(self) -> dict[str, AppRecord]:
        return {k: r for rt in self.runtimes.values() for k, r in rt.published.items()}

    def clusters(self) -> list[ClusterRecord]:
        return sorted(
            (rt.record or rt.current() for rt in self.runtimes.values()), key=lambda r: r.id
        )
