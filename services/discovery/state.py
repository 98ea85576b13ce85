"""The KV state discovery owns, and the stores that are its only writers.

Three buckets (`vessel.contracts.state`): `inventory` (each app's record under
`apps.<app id>`, read by the gateway and protection), `clusters` (each cluster's health
record, never its kubeconfig) and `app-definitions` (user-defined apps by app id). The
records are contract models, as other services read them. Bucket names are configurable
(`BucketNames`) so that tests run side by side on one server; the defaults are the
catalogue's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from vessel.bus.nats_port import Bus, KeyValue
from vessel.contracts.commands import DefineApp
from vessel.contracts.events import AppRecord, ClusterRecord
from vessel.contracts.models import app_id
from vessel.contracts.state import APP_DEFINITIONS, CLUSTERS, INVENTORY

log = logging.getLogger("vessel.discovery")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class BucketNames:
    inventory: str = INVENTORY.name
    clusters: str = CLUSTERS.name
    definitions: str = APP_DEFINITIONS.name


async def read_all(kv: KeyValue, model: type[M], under: str = "") -> list[M]:
    """Every value of the bucket (below the dotted prefix `under`); one that no longer
    parses is skipped, so a record an older version wrote cannot keep discovery from
    starting."""
    out = []
    for key in await kv.keys(under):
        entry = await kv.get(key)
        if entry is None:
            continue
        try:
            out.append(model.model_validate_json(entry.value))
        except ValidationError as exc:
            log.warning("KV key %s is not a valid %s, skipped: %s", key, model.__name__, exc)
    return out


async def read_one(kv: KeyValue, key: str, model: type[M]) -> M | None:
    """The value of `key`, or None when absent or no longer parsing (logged)."""
    entry = await kv.get(key)
    if entry is None:
        return None
    try:
        return model.model_validate_json(entry.value)
    except ValidationError as exc:
        log.warning("KV key %s is not a valid %s, ignored: %s", key, model.__name__, exc)
        return None


class AppStore:
    """The `inventory` bucket: app records under `apps.<app id>`."""

    PREFIX = "apps."

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @classmethod
    def key(cls, app: str) -> str:
        return f"{cls.PREFIX}{app}"

    async def put(self, record: AppRecord) -> None:
        await self.kv.put(self.key(record.id), record.model_dump_json().encode())

    async def delete(self, app: str) -> None:
        await self.kv.delete(self.key(app))

    async def read_all(self, cluster: str = "") -> list[AppRecord]:
        """Every app, or those of `cluster`."""
        under = f"{self.PREFIX}{cluster}" if cluster else self.PREFIX.rstrip(".")
        return await read_all(self.kv, AppRecord, under)


class ClusterStore:
    """The `clusters` bucket: each cluster's record under its id."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def put(self, record: ClusterRecord) -> None:
        await self.kv.put(record.id, record.model_dump_json().encode())

    async def delete(self, cluster: str) -> None:
        await self.kv.delete(cluster)

    async def get(self, cluster: str) -> ClusterRecord | None:
        return await read_one(self.kv, cluster, ClusterRecord)

    async def read_all(self) -> list[ClusterRecord]:
        return await read_all(self.kv, ClusterRecord)


class DefinitionStore:
    """The `app-definitions` bucket: each user-defined app's command under its app id."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @staticmethod
    def key(definition: DefineApp) -> str:
        return app_id(definition.cluster, definition.namespace, definition.name)

    async def put(self, definition: DefineApp) -> None:
        await self.kv.put(self.key(definition), definition.model_dump_json().encode())

    async def delete(self, key: str) -> None:
        await self.kv.delete(key)

    async def read_all(self, cluster: str = "") -> list[DefineApp]:
        """Every definition, or those of `cluster`."""
        return await read_all(self.kv, DefineApp, cluster)


@dataclass(frozen=True)
class Stores:
    apps: AppStore
    clusters: ClusterStore
    definitions: DefinitionStore

    @classmethod
    async def open(cls, bus: Bus, names: BucketNames) -> Stores:
        return cls(
            AppStore(await bus.kv(names.inventory)),
            ClusterStore(await bus.kv(names.clusters)),
            DefinitionStore(await bus.kv(names.definitions)),
        )
