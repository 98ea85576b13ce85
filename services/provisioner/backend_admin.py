"""Backends added, updated and removed at runtime (`provisioner.<cluster>.backend.*`).

The configured backends (settings) are loaded first; entries of the provisioner's KV
bucket `backends` (key `<cluster>.<name>`) then override, add or (a removal) hide them.
A command is validated as the settings are (unknown attribute, duplicate name, missing
path, not a btrfs filesystem, pool attributes the backend cannot offer) and applied
without a restart: claims placed afterwards see the new pools. A removal is refused while
the backend holds volumes. The KV entry keeps the operation id, so a redelivered command
changes nothing and repeats its event with the same id (dropped as a duplicate).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Literal

from pydantic import ValidationError

from services.provisioner.adapters.base import BackendError, StorageBackend
from services.provisioner.adapters.factory import build_backend
from services.provisioner.context import ProvisionerContext
from services.provisioner.pools import DEFAULT_POOL, Pool, build_pools, check_backend_names
from services.provisioner.state import BackendAction, BackendRecord, BackendStore
from vessel.bus.nats_port import KeyValue
from vessel.config import BackendConfig, ConfigError
from vessel.contracts import subjects
from vessel.contracts.commands import PutBackend, RemoveBackend
from vessel.contracts.events import BackendChanged, BackendRejected

log = logging.getLogger("vessel.provisioner")
Builder = Callable[[BackendConfig], StorageBackend]


class Rejected(Exception):
    """A backend command that cannot be applied; the message says what was wrong."""


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'backend'}: {e['msg']}" for e in exc.errors()
    )


def _build(config: BackendConfig, builder: Builder) -> tuple[StorageBackend, list[Pool]]:
    """The backend and its pools, or `Rejected` naming the backend and what is wrong."""
    try:
        backend = builder(config)
    except BackendError as exc:  # path missing, not btrfs...
        raise Rejected(str(exc)) from exc
    try:
        pools = build_pools(config, backend.type, backend.capabilities)
    except ConfigError as exc:
        raise Rejected(str(exc)) from exc
    return backend, pools


class BackendAdmin:
    """Builds the backends at start (`load`) and handles the backend commands (`add`,
    `update`, `remove`, rows of the inbox), keeping `env.backends` and `env.pools` current."""

    def __init__(
        self,
        env: ProvisionerContext,
        kv: KeyValue,
        configured: list[BackendConfig],
        builder: Builder = build_backend,
    ) -> None:
        self.env = env
        self.stored = BackendStore(kv, env.cluster_id)
        self.configured = list(configured)
        self.builder = builder
        self.configs: dict[str, BackendConfig] = {}
        """What each backend serving now was built from."""

    async def load(self) -> None:
        """Build the configured backends, then apply the KV's additions, updates, removals.

        A configured backend that cannot be built is a configuration error (the service
        stops, naming it); a stored one that no longer can is logged and left out."""
        check_backend_names(self.configured, self.env.cluster_id)
        configs = {c.name: c for c in self.configured}
        stored_names: set[str] = set()
        for name in await self.stored.names():
            stored = await self.stored.get(name)
            if stored is None:
                continue
            if stored.config is None:
                configs.pop(name, None)
                continue
            configs[name] = stored.config
            stored_names.add(name)
        backends: dict[str, StorageBackend] = {}
        pools: list[Pool] = []
        for name, config in configs.items():
            try:
                backend, built = await asyncio.to_thread(_build, config, self.builder)
            except Rejected as exc:
                if name not in stored_names:
                    raise ConfigError(f"cluster {self.env.cluster_id}: {exc}") from exc
                log.error("stored backend %s left out: %s", name, exc)
                continue
            backends[name] = backend
            pools += built
            self.configs[name] = config
        self.env.backends.clear()
        self.env.backends.update(backends)
        self.env.pools[:] = pools

    async def add(self, cmd: PutBackend) -> None:
        await self._put(cmd, "add")

    async def update(self, cmd: PutBackend) -> None:
        await self._put(cmd, "update")

    async def remove(self, cmd: RemoveBackend) -> None:
        name = cmd.name
        stored = await self.stored.get(name)
        if stored is not None and stored.operation_id == cmd.operation_id:
            await self._changed(subjects.BACKEND_REMOVED, cmd.operation_id, name, None)
            return
        try:
            if name not in self.env.backends:
                raise Rejected(self._unknown(name))
            held = self.volumes_on(name)
            if held:
                raise Rejected(
                    f"backend {name} still holds {held} volume{'s' if held != 1 else ''}: "
                    "delete or move them first"
                )
        except Rejected as exc:
            await self._reject(cmd.operation_id, "remove", name, str(exc))
            return
        record = BackendRecord(operation_id=cmd.operation_id, action="remove", config=None)
        await self.stored.put(name, record)
        async with self.env.placement:
            self.env.backends.pop(name, None)
            self.env.pools[:] = [p for p in self.env.pools if p.backend != name]
            self.configs.pop(name, None)
        log.info("backend %s removed", name)
        await self._changed(subjects.BACKEND_REMOVED, cmd.operation_id, name, None)

    async def _put(self, cmd: PutBackend, action: Literal["add", "update"]) -> None:
        given = str(cmd.backend.get("name", ""))
        stored = await self.stored.get(given) if given else None
        event = subjects.BACKEND_ADDED if action == "add" else subjects.BACKEND_UPDATED
        if stored is not None and stored.operation_id == cmd.operation_id:
            config = self.configs.get(given)
            await self._changed(event, cmd.operation_id, given, config)
            return
        try:
            config = self._validate(cmd.backend)
            self._check_action(config, action)
            backend, pools = await asyncio.to_thread(_build, config, self.builder)
        except Rejected as exc:
            await self._reject(cmd.operation_id, action, given, str(exc))
            return
        record = BackendRecord(operation_id=cmd.operation_id, action=action, config=config)
        await self.stored.put(config.name, record)
        async with self.env.placement:
            self.env.backends[config.name] = backend
            kept = [p for p in self.env.pools if p.backend != config.name]
            self.env.pools[:] = kept + pools
            self.configs[config.name] = config
        log.info("backend %s %s: %s at %s", config.name, f"{action}ed", config.type, config.path)
        await self._changed(event, cmd.operation_id, config.name, config)

    @staticmethod
    def _validate(raw: dict[str, object]) -> BackendConfig:
        try:
            return BackendConfig.model_validate(raw)
        except ValidationError as exc:
            raise Rejected(f"invalid backend {raw.get('name', '?')}: {_problems(exc)}") from exc

    def _check_action(self, config: BackendConfig, action: BackendAction) -> None:
        name = config.name
        current = self.configs.get(name)
        if action == "add":
            if name in self.env.backends:
                raise Rejected(
                    f"duplicate backend name {name}: cluster {self.env.cluster_id} has one "
                    "(use backend.update to change it)"
                )
            return
        if current is None or name not in self.env.backends:
            raise Rejected(self._unknown(name))
        held = self.volumes_on(name)
        if held and (config.type, config.path) != (current.type, current.path):
            raise Rejected(
                f"backend {name} holds {held} volume{'s' if held != 1 else ''}: its type and "
                f"path cannot change (now {current.type} at {current.path})"
            )
        names = {p.name for p in config.pools} or {DEFAULT_POOL}
        for pool in self.env.pools_of(name):
            in_pool = sum(
                1 for r in self.env.volumes.all() if r.backend == name and r.pool == pool.name
            )
            if in_pool and pool.name not in names:
                raise Rejected(
                    f"backend {name}: pool {pool.name} holds {in_pool} volume"
                    f"{'s' if in_pool != 1 else ''} and cannot be dropped"
                )

    def _unknown(self, name: str) -> str:
        known = ", ".join(sorted(self.env.backends)) or "none"
        return f"cluster {self.env.cluster_id} has no backend {name} (known: {known})"

    def volumes_on(self, name: str) -> int:
        return sum(1 for r in self.env.volumes.all() if r.backend == name)

    async def _changed(
        self,
        message: subjects.Message,
        operation_id: str,
        name: str,
        config: BackendConfig | None,
    ) -> None:
        await self.env.announce.publish(
            message,
            BackendChanged(
                cluster=self.env.cluster_id,
                operation_id=operation_id,
                backend=name,
                type=config.type if config else None,
                path=str(config.path) if config else None,
                pools=[p.name for p in self.env.pools_of(name)] if config else [],
            ),
            f"{name}/{operation_id}",
        )

    async def _reject(
        self, operation_id: str, action: BackendAction, name: str, error: str
    ) -> None:
        log.warning("backend %s refused: %s", action, error)
        await self.env.announce.publish(
            subjects.BACKEND_REJECTED,
            BackendRejected(
                cluster=self.env.cluster_id,
                operation_id=operation_id,
                action=action,
                backend=name,
                error=error,
            ),
            f"rejected/{operation_id}",
        )
