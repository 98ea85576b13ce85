"""BucketService through the real gateway (TLS, tokens) with protection's bucket registry
running over real NATS against a real S3 server and Secrets in an emulated cluster."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from services.protection.bucket_admin import BucketAdmin
from services.protection.bucket_catalog import BackupCatalog, write_catalog
from tests.gateway.harness import ADMIN_TOKEN, Pki, Running, Starter, bearer, issue, make_settings
from tests.support import sealed
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.buckets import BucketRegistry, kube_secret_reader
from vessel.bus.nats_port import Bus
from vessel.config import VesselSettings
from vessel.contracts import queries, subjects
from vessel.kube.client import KubeCluster
from vessel.objectstore.minio_port import MinioStore
from vessel_dev.rig.processes import S3Server

ADMIN = bearer(ADMIN_TOKEN)


def ref(name: str, key: str) -> ppb.SecretKeyRef:
    return ppb.SecretKeyRef(namespace="vessel", name=name, key=key)


def register(name: str, store: MinioStore, secret: str = "s3-creds", **extra: Any) -> Any:
    fields: dict[str, Any] = {
        "name": name,
        "endpoint": store.endpoint,
        "bucket": store.bucket,
        "access_key": ref(secret, "access_key"),
        "secret_key": ref(secret, "secret_key"),
        "password": ref(secret, "password"),
    }
    return ppb.RegisterBucketRequest(**{**fields, **extra})


@pytest.fixture
async def protection(bus: Bus, kube: KubeCluster, s3_server: S3Server) -> AsyncIterator[None]:
    """Protection's bucket commands and catalog query, in-process on the session's NATS."""
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "vessel"}})
    data = {
        "access_key": s3_server.access_key,
        "secret_key": s3_server.secret_key,
        "password": "pw",
    }
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s3-creds", "namespace": "vessel"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
    )
    kv = await bus.kv("buckets")
    admin = BucketAdmin(bus, kv, BucketRegistry(VesselSettings(), kv, kube_secret_reader(kube)))
    commands = await bus.consume(
        "tests-bucket-admin",
        {subjects.PUT_BUCKET: admin.on_put, subjects.REMOVE_BUCKET: admin.on_remove},
    )
    query = await bus.serve(queries.QUERY_CATALOG, admin.answer_catalog)
    yield
    commands.cancel()
    query.cancel()
    # A work-queue stream gives each subject to one consumer: leave none behind.
    await bus.js.delete_consumer(subjects.COMMANDS_STREAM, "tests-bucket-admin")


@pytest.fixture
async def gateway(start_gateway: Starter, pki: Pki, protection: None) -> Running:
    tls = {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)}
    return await start_gateway(make_settings(tls=tls), pki=pki)


async def test_a_registered_bucket_is_listed_and_its_backups_readable(
    gateway: Running, bucket: MinioStore
) -> None:
    buckets = prpc.BucketServiceStub(gateway.channel())
    name = f"offsite-{uuid.uuid4().hex[:6]}"
    made = await buckets.RegisterBucket(register(name, bucket), metadata=ADMIN)
    assert made.source == "registered" and made.password.key == "password"
    listed = await buckets.ListBuckets(ppb.ListBucketsRequest(), metadata=ADMIN)
    assert name in [b.name for b in listed.buckets]
    got = await buckets.GetBucket(ppb.GetBucketRequest(name=name), metadata=ADMIN)
    assert got.bucket == bucket.bucket and got.access_key.name == "s3-creds"

    stamp = datetime.now(UTC)
    write_catalog(
        sealed(bucket),
        BackupCatalog(
            backup_id="bk-1",
            app_id="east.shop.web",
            cluster="east",
            namespace="shop",
            created=stamp,
            completed=stamp,
            resources_digest="0" * 64,
            volumes=[],
        ),
    )
    backups = prpc.BackupCatalogServiceStub(gateway.channel())
    found = await backups.ListBackups(ppb.ListBackupsRequest(bucket=name), metadata=ADMIN)
    assert [(b.id, b.app_id, b.error) for b in found.backups] == [("bk-1", "east.shop.web", "")]

    await buckets.RemoveBucket(ppb.RemoveBucketRequest(name=name), metadata=ADMIN)
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await buckets.GetBucket(ppb.GetBucketRequest(name=name), metadata=ADMIN)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_registration_with_a_missing_secret_is_refused_with_the_reason(
    gateway: Running, bucket: MinioStore
) -> None:
    buckets = prpc.BucketServiceStub(gateway.channel())
    name = f"broken-{uuid.uuid4().hex[:6]}"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await buckets.RegisterBucket(register(name, bucket, secret="absent"), metadata=ADMIN)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "Secret vessel/absent not found" in (refused.value.details() or "")
    listed = await buckets.ListBuckets(ppb.ListBucketsRequest(), metadata=ADMIN)
    assert name not in [b.name for b in listed.buckets]


async def test_bad_fields_and_non_admins_are_refused(gateway: Running, bucket: MinioStore) -> None:
    channel = gateway.channel()
    buckets = prpc.BucketServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await buckets.RegisterBucket(
            register("x", bucket, endpoint="http://no/scheme"), metadata=ADMIN
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "endpoint" in (bad.value.details() or "")
    _, member = await issue(channel, ADMIN_TOKEN, "member")
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await buckets.RegisterBucket(register("y", bucket), metadata=bearer(member))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
