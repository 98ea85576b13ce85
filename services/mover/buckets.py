"""The buckets a mover writes to: configured ones (their key provider from the settings)
and registered ones, whose credentials and password are Secret keys in the mover's own
cluster.

Opening a registered bucket reads Kubernetes Secrets (async), while the repository work
runs in threads, so handlers first `prepare` the buckets a command names; the threads then
take the prepared repository with `data_for`. A re-registered bucket (new KV revision) is
prepared afresh; an unchanged one keeps its repository handle and derived key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from services.mover.volumes import RepositoryData
from vessel.buckets import BucketError, BucketRegistry, OpenBucket
from vessel.bus.errors import PermanentError

C = TypeVar("C")


class MoverBuckets:
    def __init__(self, registry: BucketRegistry) -> None:
        self.registry = registry
        self._data: dict[str, tuple[OpenBucket, RepositoryData]] = {}

    async def prepare(self, name: str) -> RepositoryData:
        try:
            opened = await self.registry.open(name)
            kept = self._data.get(name)
            if kept is not None and kept[0] is opened:
                return kept[1]
            like = await self.prepare(opened.like) if opened.like else None
            data = RepositoryData(opened.store, opened.repository, opened.key_provider(), like)
        except BucketError as exc:
            raise PermanentError(str(exc)) from exc
        self._data[name] = (opened, data)
        return data

    def data_for(self, name: str) -> RepositoryData:
        try:
            return self._data[name][1]
        except KeyError:
            raise PermanentError(f"bucket {name!r} was not prepared for this command") from None

    def preparing(
        self,
        handler: Callable[[C], Awaitable[None]],
        fields: tuple[str, ...],
        refuse: Callable[[C, str], Awaitable[None]],
    ) -> Callable[[C], Awaitable[None]]:
        """`handler`, after preparing the buckets its command names in `fields`; a bucket
        that cannot be opened is answered by `refuse(command, why)` (a failed transfer), so
        the operation waiting for the answer ends instead of waiting forever."""

        async def run(cmd: C) -> None:
            command: Any = cmd
            try:
                for field in fields:
                    await self.prepare(getattr(command, field))
            except PermanentError as exc:
                await refuse(cmd, str(exc))
                return
            await handler(cmd)

        return run
