"""A bucket's `key` block, from the settings to the key provider the mover and protection
use, and what a missing Secret or a revoked KMS key becomes: a permanent error naming the
key, never a crash or a retry loop."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from services.mover.buckets import MoverBuckets
from services.protection.bucket_keys import bucket_opener
from services.protection.context import ProtectionContext
from tests.sealed.kmskit import Kms
from vessel.buckets import BucketError, BucketRegistry, kube_secret_reader
from vessel.bus.errors import PermanentError
from vessel.config import (
    BucketConfig,
    KmsKeyConfig,
    PasswordKeyConfig,
    SecretKeyConfig,
    VesselSettings,
)
from vessel.kube.client import KubeCluster
from vessel.objectstore.minio_port import MinioStore
from vessel.sealed.errors import KeyUnavailable
from vessel.sealed.providers.aws_kms import KmsKey
from vessel.sealed.providers.kubernetes_secret import SecretKey, new_secret_value
from vessel.sealed.providers.password import PasswordKey
from vessel_dev.rig.processes import S3Server

S3_ENV = {"access_key_env": "T_S3_ACCESS", "secret_key_env": "T_S3_SECRET"}


def test_the_key_block_chooses_the_provider() -> None:
    def config(key: dict[str, Any] | None) -> BucketConfig:
        extra = {"key": key} if key is not None else {}
        return BucketConfig.model_validate(
            {"name": "b", "endpoint": "s3:9000", "bucket": "bkt", **extra}
        )

    assert isinstance(config(None).key, PasswordKeyConfig)
    secret = config({"provider": "kubernetes-secret", "namespace": "n", "name": "s", "key": "k"})
    assert isinstance(secret.key, SecretKeyConfig) and secret.key.name == "s"
    kms = config({"provider": "aws-kms", "key_id": "alias/v", "endpoint_url": "http://kms:4566"})
    assert isinstance(kms.key, KmsKeyConfig) and kms.key.region is None
    for bad in (
        {"provider": "vault"},
        {"provider": "aws-kms"},
        {"provider": "aws-kms", "key_id": "k", "secret_access_key": "no secrets in files"},
        {"provider": "password", "password": "no secrets in files"},
    ):
        with pytest.raises(ValueError):
            config(bad)


def test_every_key_field_is_described() -> None:
    for model in (PasswordKeyConfig, SecretKeyConfig, KmsKeyConfig):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name}"


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_S3_ACCESS", s3_server.access_key)
    monkeypatch.setenv("T_S3_SECRET", s3_server.secret_key)


def configured(bucket: MinioStore, key: dict[str, Any]) -> VesselSettings:
    return VesselSettings(
        buckets=[
            BucketConfig.model_validate(
                {
                    "name": "vault",
                    "endpoint": bucket.endpoint,
                    "bucket": bucket.bucket,
                    "key": key,
                    **S3_ENV,
                }
            )
        ]
    )


def protection(registry: BucketRegistry) -> ProtectionContext:
    """Protection as far as `in_bucket` needs it: the bucket opener of the service."""
    none: Any = None
    return ProtectionContext(none, {}, bucket_opener(registry), none, none, none)


async def test_a_missing_secret_is_a_permanent_error_until_it_exists(
    s3_env: None, bucket: MinioStore, kube: KubeCluster
) -> None:
    name = f"bucket-key-{uuid.uuid4().hex[:6]}"
    settings = configured(
        bucket, {"provider": "kubernetes-secret", "namespace": "default", "name": name, "key": "k"}
    )
    registry = BucketRegistry(settings, None, kube_secret_reader(kube))
    opened = await registry.open("vault")
    with pytest.raises(BucketError, match=f"Secret default/{name} key 'k': the Secret does not"):
        opened.key_provider()
    with pytest.raises(PermanentError, match=f"Secret default/{name}"):
        await MoverBuckets(registry).prepare("vault")
    with pytest.raises(PermanentError, match=f"Secret default/{name}"):
        await protection(registry).in_bucket("vault", lambda sealed: sealed.master)

    value = new_secret_value()
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": "default"},
            "data": {"k": base64.b64encode(value.encode()).decode()},
        }
    )
    # No restart: the bucket is opened afresh while its key could not be had.
    master = await protection(registry).in_bucket("vault", lambda sealed: sealed.master)
    key = (await registry.open("vault")).key_provider()
    assert isinstance(key, SecretKey) and value not in repr(key)
    data = await MoverBuckets(registry).prepare("vault")
    assert data.repository().key == master


async def test_a_revoked_kms_key_is_a_permanent_error_naming_it(
    s3_env: None, bucket: MinioStore, kms: Kms
) -> None:
    key_id = kms.new_key()
    settings = configured(
        bucket, {"provider": "aws-kms", "key_id": key_id, "endpoint_url": kms.endpoint_url}
    )
    registry = BucketRegistry(settings)
    sealed = await protection(registry).in_bucket("vault", lambda s: s)
    provider = (await registry.open("vault")).key_provider()
    assert isinstance(provider, KmsKey)
    assert provider.context["vessel:repository"] == f"{bucket.bucket}/repository"
    (key_file,) = bucket.list("repository/keys/")
    assert key_id in bucket.get_bytes(key_file).decode()
    data = await MoverBuckets(registry).prepare("vault")
    assert data.repository().key == sealed.master  # the mover adopts protection's key

    kms.disable(key_id)
    fresh = BucketRegistry(settings)  # a process started after the key was revoked
    with pytest.raises(PermanentError, match=f"KMS key {key_id} .*is Disabled"):
        await protection(fresh).in_bucket("vault", lambda s: s.master)
    revoked = await MoverBuckets(fresh).prepare("vault")
    with pytest.raises(KeyUnavailable, match=f"KMS key {key_id}"):
        revoked.repository()


async def test_the_password_provider_stays_the_default(
    s3_env: None, bucket: MinioStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = BucketRegistry(configured(bucket, {"provider": "password"}))
    with pytest.raises(BucketError, match="VESSEL_REPOSITORY_PASSWORD"):
        (await registry.open("vault")).key_provider()
    monkeypatch.setenv("VESSEL_REPOSITORY_PASSWORD", "from the environment")
    # An unset variable is a configuration error: it needs a restart, like the others.
    assert (await registry.open("vault")).key is None
    key = (await BucketRegistry(registry.settings).open("vault")).key_provider()
    assert isinstance(key, PasswordKey) and key.password == b"from the environment"
