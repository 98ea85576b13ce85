"""The bucket registry's writer, and the catalog reads it serves for services that hold no
bucket credentials (the gateway).

A bucket is kept only after its Secret keys resolved and the bucket answered a listing
with those credentials, so a registered bucket is a usable one; the record holds the Secret
references, never their values.
"""

from __future__ import annotations

import asyncio
import base64
import logging

from pydantic import ValidationError

from vessel.buckets import BucketError, BucketRegistry
from vessel.bus.nats_port import Bus, KeyValue
from vessel.contracts import subjects
from vessel.contracts.buckets import (
    BucketChanged,
    BucketRecord,
    BucketRejected,
    BucketSpec,
    CatalogRead,
    CatalogReply,
    PutBucket,
    RemoveBucket,
)
from vessel.contracts.events import QueryFailed
from vessel.contracts.operations import now
from vessel.contracts.state import BACKUPS_PREFIX
from vessel.objectstore.base import ObjectNotFound, ObjectStoreError

log = logging.getLogger("vessel.protection.buckets")


class BucketAdmin:
    def __init__(self, bus: Bus, kv: KeyValue, registry: BucketRegistry) -> None:
        self.bus, self.kv, self.registry = bus, kv, registry

    async def on_put(self, cmd: PutBucket) -> None:
        spec = cmd.bucket
        if self.registry.configured(spec.name) is not None:
            await self._reject(
                cmd.operation_id, spec.name, "configured in the settings file; change it there"
            )
            return
        try:
            opened = await self.registry.open_spec(spec)
            await asyncio.to_thread(opened.store.list, BACKUPS_PREFIX)
        except (BucketError, ObjectStoreError) as exc:
            await self._reject(cmd.operation_id, spec.name, str(exc))
            return
        existed = await self.kv.get(spec.name) is not None
        record = BucketRecord(spec=spec, registered=now(), registered_by=cmd.requested_by)
        await self.kv.put(spec.name, record.model_dump_json().encode())
        log.info("bucket %s registered (%s/%s)", spec.name, spec.endpoint, spec.bucket)
        await self._announce(
            subjects.BUCKET_UPDATED if existed else subjects.BUCKET_ADDED,
            spec,
            cmd.operation_id,
            cmd.requested_by,
        )

    async def on_remove(self, cmd: RemoveBucket) -> None:
        if self.registry.configured(cmd.name) is not None:
            await self._reject(
                cmd.operation_id, cmd.name, "configured in the settings file; remove it there"
            )
            return
        found = await self.registry.record(cmd.name)
        if found is None:
            return  # already gone: removal is idempotent
        await self.kv.delete(cmd.name)
        await self._announce(
            subjects.BUCKET_REMOVED, found[1].spec, cmd.operation_id, cmd.requested_by
        )

    async def _announce(
        self, message: subjects.Message, spec: BucketSpec, op_id: str, requested_by: str
    ) -> None:
        changed = BucketChanged(
            operation_id=op_id,
            name=spec.name,
            endpoint=spec.endpoint,
            bucket=spec.bucket,
            requested_by=requested_by,
        )
        await self.bus.publish(message, changed)

    async def _reject(self, op_id: str, name: str, error: str) -> None:
        log.warning("bucket %s rejected: %s", name, error)
        await self.bus.publish(
            subjects.BUCKET_REJECTED, BucketRejected(operation_id=op_id, name=name, error=error)
        )

    async def answer_catalog(self, subject: str, body: bytes) -> bytes:
        try:
            read = CatalogRead.model_validate_json(body)
        except ValidationError as exc:
            return QueryFailed.invalid(subject, exc).model_dump_json().encode()
        if read.action == "get" and not read.key.endswith(".json"):
            return (
                QueryFailed(error="only .json catalog objects are served")
                .model_dump_json()
                .encode()
            )
        try:
            store = (await self.registry.open(read.bucket)).store
            if read.action == "list":
                reply = CatalogReply(keys=await asyncio.to_thread(store.list, read.key))
            elif read.action == "exists":
                reply = CatalogReply(exists=await asyncio.to_thread(store.exists, read.key))
            else:
                data = await asyncio.to_thread(store.get_bytes, read.key)
                reply = CatalogReply(data=base64.b64encode(data).decode(), exists=True)
        except ObjectNotFound:
            reply = CatalogReply(missing=True)
        except (BucketError, ObjectStoreError) as exc:
            return QueryFailed(error=str(exc)).model_dump_json().encode()
        return reply.model_dump_json().encode()
