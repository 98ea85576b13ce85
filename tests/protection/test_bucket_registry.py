"""The bucket registry over real NATS, a real S3 server and Secrets in an emulated cluster:
a bucket is kept only when its Secret keys resolve and S3 accepts them; the record holds
references only; the gateway's read-only view reads catalog objects through protection."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from services.gateway.reads.remote_bucket import GatewayBuckets
from services.protection.bucket_admin import BucketAdmin
from vessel.buckets import BucketError, BucketRegistry, kube_secret_reader
from vessel.bus.nats_port import Bus
from vessel.config import BucketConfig, VesselSettings
from vessel.contracts import queries, subjects
from vessel.contracts.buckets import BucketSpec, PutBucket, RemoveBucket, SecretKeyRef
from vessel.kube.client import KubeCluster
from vessel.kube.errors import Forbidden
from vessel.objectstore.base import ObjectNotFound
from vessel.objectstore.minio_port import MinioStore
from vessel.sealed.providers.password import PasswordKey
from vessel_dev.rig.processes import S3Server

PASSWORD = "repository-password-for-tests"


def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "vessel"},
        "data": encoded,
    }


def spec(name: str, store: MinioStore, secret_name: str = "s3-creds") -> BucketSpec:
    def ref(key: str) -> SecretKeyRef:
        return SecretKeyRef(namespace="vessel", name=secret_name, key=key)

    return BucketSpec(
        name=name,
        endpoint=store.endpoint,
        bucket=store.bucket,
        access_key=ref("access_key"),
        secret_key=ref("secret_key"),
        password=ref("password"),
    )


@pytest.fixture
async def setup(
    bus: Bus, kube: KubeCluster, s3_server: S3Server, bucket: MinioStore
) -> AsyncIterator[tuple[BucketAdmin, BucketRegistry, str]]:
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "vessel"}})
    await kube.create(
        secret(
            "s3-creds",
            {
                "access_key": s3_server.access_key,
                "secret_key": s3_server.secret_key,
                "password": PASSWORD,
            },
        )
    )
    await kube.create(
        secret("wrong-creds", {"access_key": "nobody", "secret_key": "x" * 20, "password": "p"})
    )
    kv_name = f"buckets-{uuid.uuid4().hex[:8]}"
    kv = await bus.kv(kv_name)
    settings = VesselSettings(
        buckets=[BucketConfig(name="configured", endpoint=s3_server.endpoint, bucket=bucket.bucket)]
    )
    registry = BucketRegistry(settings, kv, kube_secret_reader(kube))
    yield BucketAdmin(bus, kv, registry), registry, kv_name


async def outcome(bus: Bus, since: datetime, name: str) -> tuple[str, dict[str, Any]]:
    async with asyncio.timeout(10):
        async for _, event in bus.tail("vessel.evt.protection.bucket.>", since=since):
            if event.data.get("name") == name:
                return event.type, event.data
    raise AssertionError("unreachable")


async def test_a_bucket_with_resolvable_secrets_is_registered_by_reference(
    setup: tuple[BucketAdmin, BucketRegistry, str], bus: Bus, bucket: MinioStore
) -> None:
    admin, registry, kv_name = setup
    since = datetime.now(UTC)
    await admin.on_put(PutBucket(operation_id="put-1", bucket=spec("offsite", bucket)))
    kind, data = await outcome(bus, since, "offsite")
    assert kind == subjects.BUCKET_ADDED.type and data["bucket"] == bucket.bucket
    raw = (await (await bus.kv(kv_name)).get("offsite")).value  # type: ignore[union-attr]
    assert b"s3-creds" in raw and PASSWORD.encode() not in raw
    opened = await registry.open("offsite")
    key = opened.key_provider()
    assert isinstance(key, PasswordKey) and key.password == PASSWORD.encode()
    assert opened.repository == "repository"
    opened.store.put_bytes("backups/b1/backup.json", b"{}")
    assert bucket.get_bytes("backups/b1/backup.json") == b"{}"
    assert await registry.names() == ["configured", "offsite"]

    since = datetime.now(UTC)
    await admin.on_put(PutBucket(operation_id="put-2", bucket=spec("offsite", bucket)))
    assert (await outcome(bus, since, "offsite"))[0] == subjects.BUCKET_UPDATED.type


@pytest.mark.parametrize(
    ("secret_name", "error"),
    [
        ("absent", "Secret vessel/absent not found"),
        ("wrong-creds", "access denied (InvalidAccessKeyId)"),
    ],
)
async def test_unusable_credentials_are_rejected_and_nothing_is_kept(
    setup: tuple[BucketAdmin, BucketRegistry, str],
    bus: Bus,
    bucket: MinioStore,
    secret_name: str,
    error: str,
) -> None:
    admin, registry, kv_name = setup
    since = datetime.now(UTC)
    await admin.on_put(
        PutBucket(operation_id="put-bad", bucket=spec("offsite", bucket, secret_name))
    )
    kind, data = await outcome(bus, since, "offsite")
    assert kind == subjects.BUCKET_REJECTED.type and error in data["error"]
    assert await (await bus.kv(kv_name)).get("offsite") is None
    with pytest.raises(BucketError, match="neither configured nor registered"):
        await registry.open("offsite")


async def test_a_missing_key_in_the_secret_is_named(
    setup: tuple[BucketAdmin, BucketRegistry, str], bucket: MinioStore
) -> None:
    _, registry, _ = setup
    broken = spec("offsite", bucket).model_copy(
        update={"password": SecretKeyRef(namespace="vessel", name="s3-creds", key="nope")}
    )
    with pytest.raises(BucketError, match="Secret vessel/s3-creds has no key 'nope'"):
        await registry.open_spec(broken)


async def test_configured_buckets_cannot_be_replaced_and_removal_is_idempotent(
    setup: tuple[BucketAdmin, BucketRegistry, str], bus: Bus, bucket: MinioStore
) -> None:
    admin, _, kv_name = setup
    since = datetime.now(UTC)
    await admin.on_put(PutBucket(operation_id="put-c", bucket=spec("configured", bucket)))
    kind, data = await outcome(bus, since, "configured")
    assert kind == subjects.BUCKET_REJECTED.type and "settings file" in data["error"]

    await admin.on_put(PutBucket(operation_id="put-o", bucket=spec("offsite", bucket)))
    since = datetime.now(UTC)
    await admin.on_remove(RemoveBucket(operation_id="rm-1", name="offsite"))
    assert (await outcome(bus, since, "offsite"))[0] == subjects.BUCKET_REMOVED.type
    await admin.on_remove(RemoveBucket(operation_id="rm-2", name="offsite"))  # gone: no error
    assert await (await bus.kv(kv_name)).get("offsite") is None


async def test_the_gateway_reads_a_registered_buckets_catalog_through_protection(
    setup: tuple[BucketAdmin, BucketRegistry, str], bus: Bus, bucket: MinioStore
) -> None:
    admin, _, kv_name = setup
    await admin.on_put(PutBucket(operation_id="put-g", bucket=spec("offsite", bucket)))
    bucket.put_bytes("backups/b7/backup.json", b'{"backup_id": "b7"}')
    bucket.put_bytes("repository/config", b"secret repository data")
    server = await bus.serve(queries.QUERY_CATALOG, admin.answer_catalog)
    try:
        view = GatewayBuckets(VesselSettings(), bus, await bus.kv(kv_name))
        assert await view.known("offsite") and not await view.known("elsewhere")
        store = view.open("offsite")
        assert await asyncio.to_thread(store.list, "backups/") == ["backups/b7/backup.json"]
        assert await asyncio.to_thread(store.get_bytes, "backups/b7/backup.json") == (
            b'{"backup_id": "b7"}'
        )
        assert await asyncio.to_thread(store.exists, "backups/b7/backup.json")
        with pytest.raises(ObjectNotFound):
            await asyncio.to_thread(store.get_bytes, "backups/b8/backup.json")
        with pytest.raises(ValueError, match="key"):  # the repository is not served
            await asyncio.to_thread(store.get_bytes, "repository/config")
    finally:
        server.cancel()


async def test_a_secret_this_service_may_not_read_is_a_bucket_error(bucket: MinioStore) -> None:
    async def forbidden(namespace: str, name: str) -> dict[str, str] | None:
        raise Forbidden(f'secrets "{name}" is forbidden in namespace "{namespace}"')

    registry = BucketRegistry(VesselSettings(), None, forbidden)
    with pytest.raises(BucketError, match=r"access_key: Secret vessel/s3-creds: .*forbidden"):
        await registry.open_spec(spec("offsite", bucket))
