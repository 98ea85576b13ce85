"""BucketService: the buckets in the settings and those registered at run time.

Registration is checked here for shape, then published; the call waits for protection's
verdict (it resolves the Secret keys and lists the bucket with them), so an answered
RegisterBucket is a usable bucket. A retry with the same `request_id` publishes nothing and
reads the same verdict. Credentials never pass: requests and answers carry Secret key
references only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import grpc
from pydantic import ValidationError

from services.gateway.auth import authz
from services.gateway.context import GatewayContext
from services.gateway.errors import ApiError, RpcContext, guard, invalid, not_found
from services.gateway.operations import first_time, operation_id
from services.gateway.validation import require_ids
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.config import BucketConfig
from vessel.contracts import subjects
from vessel.contracts.buckets import BucketRecord, BucketSpec, PutBucket, RemoveBucket, SecretKeyRef
from vessel.contracts.envelope import CloudEvent
from vessel.contracts.operations import now

VERDICT_SECONDS = 20.0
BUCKET_EVENTS = "vessel.evt.protection.bucket.>"


def _ref(ref: SecretKeyRef) -> ppb.SecretKeyRef:
    return ppb.SecretKeyRef(namespace=ref.namespace, name=ref.name, key=ref.key)


def configured_message(config: BucketConfig) -> ppb.Bucket:
    return ppb.Bucket(
        name=config.name,
        endpoint=config.endpoint,
        bucket=config.bucket,
        repository=config.repository,
        secure=config.secure,
        like=config.like or "",
        source="config",
    )


def registered_message(spec: BucketSpec) -> ppb.Bucket:
    return ppb.Bucket(
        name=spec.name,
        endpoint=spec.endpoint,
        bucket=spec.bucket,
        repository=spec.repository,
        secure=spec.secure,
        like=spec.like or "",
        source="registered",
        access_key=_ref(spec.access_key),
        secret_key=_ref(spec.secret_key),
        password=_ref(spec.password),
    )


def bucket_spec(request: ppb.RegisterBucketRequest) -> BucketSpec:
    """The request as a registry entry, or INVALID_ARGUMENT naming every bad field."""

    def ref(message: ppb.SecretKeyRef) -> dict[str, str]:
        return {"namespace": message.namespace, "name": message.name, "key": message.key}

    raw = {
        "name": request.name,
        "endpoint": request.endpoint,
        "bucket": request.bucket,
        "secure": request.secure,
        "access_key": ref(request.access_key),
        "secret_key": ref(request.secret_key),
        "password": ref(request.password),
        "repository": request.repository or "repository",
        "like": request.like or None,
    }
    try:
        return BucketSpec.model_validate(raw)
    except ValidationError as exc:
        raise invalid(
            [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        ) from None


class BucketService(prpc.BucketServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self.registry = ctx.buckets.registry

    async def _registered(self, name: str) -> BucketSpec | None:
        entry = await self.registry.get(name)
        if entry is None:
            return None
        return BucketRecord.model_validate_json(entry.value).spec

    async def _message(self, name: str) -> ppb.Bucket | None:
        config = next((b for b in self.ctx.settings.buckets if b.name == name), None)
        if config is not None:
            return configured_message(config)
        spec = await self._registered(name)
        return registered_message(spec) if spec is not None else None

    @guard
    async def ListBuckets(
        self, request: ppb.ListBucketsRequest, context: RpcContext
    ) -> ppb.ListBucketsResponse:
        found = [await self._message(name) for name in await self.ctx.buckets.names()]
        return ppb.ListBucketsResponse(buckets=[b for b in found if b is not None])

    @guard
    async def GetBucket(self, request: ppb.GetBucketRequest, context: RpcContext) -> ppb.Bucket:
        await self.ctx.known_bucket("name", request.name)
        message = await self._message(request.name)
        if message is None:
            raise not_found(f"bucket {request.name}")
        return message

    @guard
    async def RegisterBucket(
        self, request: ppb.RegisterBucketRequest, context: RpcContext
    ) -> ppb.Bucket:
        spec = bucket_spec(request)
        require_ids(("request_id", request.request_id, "an identifier", False))
        if any(b.name == spec.name for b in self.ctx.settings.buckets):
            raise ApiError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"bucket {spec.name} is configured in the settings file; change it there",
            )
        op_id = operation_id("bucket-put", request.request_id)
        command = PutBucket(operation_id=op_id, bucket=spec, requested_by=authz.current().name)
        await self._decide(op_id, lambda: self.ctx.bus.publish(subjects.PUT_BUCKET, command))
        return registered_message(spec)

    @guard
    async def RemoveBucket(
        self, request: ppb.RemoveBucketRequest, context: RpcContext
    ) -> ppb.RemoveBucketResponse:
        require_ids(("name", request.name, "a bucket name", True))
        require_ids(("request_id", request.request_id, "an identifier", False))
        if any(b.name == request.name for b in self.ctx.settings.buckets):
            raise ApiError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"bucket {request.name} is configured in the settings file; remove it there",
            )
        if await self._registered(request.name) is None:
            raise not_found(f"bucket {request.name}")
        op_id = operation_id("bucket-remove", request.request_id)
        command = RemoveBucket(
            operation_id=op_id, name=request.name, requested_by=authz.current().name
        )
        await self._decide(op_id, lambda: self.ctx.bus.publish(subjects.REMOVE_BUCKET, command))
        return ppb.RemoveBucketResponse()

    async def _decide(self, op_id: str, publish: Callable[[], Awaitable[object]]) -> None:
        """Publish (the first time only) and wait for protection's answer to `op_id`."""
        since = now() - timedelta(seconds=1)
        verdict = asyncio.ensure_future(self._verdict(op_id, since))
        try:
            if await first_time(self.ctx, op_id, "bucket"):
                await publish()
            event = await asyncio.wait_for(verdict, VERDICT_SECONDS)
        except TimeoutError:
            raise ApiError(
                grpc.StatusCode.UNAVAILABLE,
                f"protection did not answer bucket command {op_id} within {VERDICT_SECONDS:g}s",
            ) from None
        finally:
            verdict.cancel()
        if event.type == subjects.BUCKET_REJECTED.type:
            raise ApiError(grpc.StatusCode.FAILED_PRECONDITION, str(event.data.get("error")))

    async def _verdict(self, op_id: str, since: datetime) -> CloudEvent:
        async for _, event in self.ctx.bus.tail(BUCKET_EVENTS, since=since):
            if event.data.get("operation_id") == op_id:
                return event
        raise ApiError(grpc.StatusCode.UNAVAILABLE, "the event stream ended")
