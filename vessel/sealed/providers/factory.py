"""The key provider a bucket's configuration names, built with what it needs: the
password from the environment, the Secret read through the caller's Kubernetes client,
a KMS client. Errors are `KeyUnavailable` naming the key (or `ConfigError` for an unset
environment variable), never showing key material."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from vessel.config import BucketConfig, KmsKeyConfig, SecretKeyConfig
from vessel.kube.errors import KubeError
from vessel.sealed.errors import KeyUnavailable
from vessel.sealed.keys import KeyProvider
from vessel.sealed.providers.kubernetes_secret import SecretKey
from vessel.sealed.providers.password import PasswordKey

SecretReader = Callable[[str, str], Awaitable[dict[str, str] | None]]
"""(namespace, name) -> the Secret's decoded data, or None when it does not exist."""


async def read_secret_key(
    read_secret: SecretReader | None, namespace: str, name: str, key: str
) -> str:
    """The value of one key of a Secret; `KeyUnavailable` naming the Secret otherwise."""
    where = f"Secret {namespace}/{name} key {key!r}"
    if read_secret is None:
        raise KeyUnavailable(f"{where}: this service cannot read Secrets")
    try:
        data = await read_secret(namespace, name)
    except KubeError as exc:  # Forbidden, unreachable
        raise KeyUnavailable(f"{where}: {exc}") from exc
    if data is None:
        raise KeyUnavailable(f"{where}: the Secret does not exist")
    value = data.get(key)
    if not value:
        raise KeyUnavailable(f"{where}: the Secret has no such key")
    return value


def kms_key(config: KmsKeyConfig, bucket: str, repository: str) -> KeyProvider:
    try:
        from vessel.sealed.providers.aws_kms import KmsKey  # boto3: the optional `kms` extra
    except ImportError as exc:
        raise KeyUnavailable(
            f"KMS key {config.key_id}: boto3 is not installed (pip install vessel[kms])"
        ) from exc
    return KmsKey(
        config.key_id,
        config.bound_to or f"{bucket}/{repository}",
        region=config.region,
        endpoint_url=config.endpoint_url,
    )


async def configured_key(config: BucketConfig, read_secret: SecretReader | None) -> KeyProvider:
    key = config.key
    if isinstance(key, SecretKeyConfig):
        value = await read_secret_key(read_secret, key.namespace, key.name, key.key)
        return SecretKey(value, key.namespace, key.name, key.key)
    if isinstance(key, KmsKeyConfig):
        # Making a boto3 client reads its service models from disk: not on the loop.
        return await asyncio.to_thread(kms_key, key, config.bucket, config.repository)
    return PasswordKey(config.password())
