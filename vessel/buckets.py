"""Opens buckets by name: those in the settings (credentials from environment variables,
the master key's provider from their `key` block) and those registered at run time (KV
`buckets`, credentials and the repository password from Kubernetes Secret keys).

A registered bucket is reopened when its record changes (its KV revision), so a re-pointed
bucket or rotated credentials apply without a restart; Secret values live only in memory.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from pydantic import ValidationError

from vessel.bus.nats_port import KeyValue
from vessel.config import BucketConfig, ConfigError, VesselSettings
from vessel.contracts.buckets import BucketRecord, BucketSpec, SecretKeyRef
from vessel.kube.errors import KubeError
from vessel.kube.port import KubeApi
from vessel.objectstore.base import ObjectStore
from vessel.objectstore.lock import LockPolicy, locked
from vessel.objectstore.minio_port import MinioStore
from vessel.sealed.errors import KeyUnavailable
from vessel.sealed.keys import KeyProvider
from vessel.sealed.providers.factory import SecretReader, configured_key
from vessel.sealed.providers.password import PasswordKey

__all__ = ["BucketError", "BucketRegistry", "OpenBucket", "SecretReader", "kube_secret_reader"]


class BucketError(Exception):
    """A bucket cannot be opened: unknown, an unreadable record, a missing Secret or key."""


@dataclass(frozen=True)
class OpenBucket:
    name: str
    store: ObjectStore
    repository: str
    like: str | None
    key: KeyProvider | None = field(default=None, repr=False)
    key_error: str = ""
    key_retry: bool = False
    """The key source refused or was out of reach: open the bucket afresh next time."""

    def key_provider(self) -> KeyProvider:
        """What opens the bucket's master key; catalog readers (the gateway) never need
        it, so a bucket whose key cannot be had still opens, and this raises."""
        if self.key is None:
            raise BucketError(self.key_error or f"bucket {self.name!r}: no key provider")
        return self.key


def kube_secret_reader(kube: KubeApi) -> SecretReader:
    async def read(namespace: str, name: str) -> dict[str, str] | None:
        secret = await kube.get("v1", "Secret", name, namespace)
        if secret is None:
            return None
        decoded = {}
        for key, value in (secret.get("data") or {}).items():
            try:
                decoded[key] = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                continue  # not text: cannot be a credential; reported as a missing key
        return {**decoded, **(secret.get("stringData") or {})}

    return read


class BucketRegistry:
    def __init__(
        self,
        settings: VesselSettings,
        kv: KeyValue | None = None,
        read_secret: SecretReader | None = None,
    ) -> None:
        self.settings, self.kv, self.read_secret = settings, kv, read_secret
        self._opened: dict[str, tuple[int, OpenBucket]] = {}

    def configured(self, name: str) -> BucketConfig | None:
        return next((b for b in self.settings.buckets if b.name == name), None)

    async def record(self, name: str) -> tuple[int, BucketRecord] | None:
        if self.kv is None:
            return None
        entry = await self.kv.get(name)
        if entry is None:
            return None
        try:
            return entry.revision, BucketRecord.model_validate_json(entry.value)
        except ValidationError as exc:
            raise BucketError(f"bucket {name!r}: unreadable registry record: {exc}") from exc

    async def names(self) -> list[str]:
        registered = await self.kv.keys() if self.kv is not None else []
        return sorted({b.name for b in self.settings.buckets} | set(registered))

    async def open(self, name: str) -> OpenBucket:
        config = self.configured(name)
        if config is not None:
            cached = self._cached(name, 0)
            if cached is not None and not cached.key_retry:
                return cached
            # Not kept while its key cannot be had: a Secret created or a KMS key
            # enabled later applies without a restart.
            return self._keep(name, 0, await self._open_config(config))
        found = await self.record(name)
        if found is None:
            raise BucketError(f"bucket {name!r} is neither configured nor registered")
        revision, record = found
        return self._cached(name, revision) or self._keep(
            name, revision, await self.open_spec(record.spec)
        )

    async def open_spec(self, spec: BucketSpec) -> OpenBucket:
        access = await self._secret(spec.name, "access_key", spec.access_key)
        secret = await self._secret(spec.name, "secret_key", spec.secret_key)
        password = await self._secret(spec.name, "password", spec.password)
        store = MinioStore(spec.endpoint, spec.bucket, access, secret, secure=spec.secure)
        return OpenBucket(spec.name, store, spec.repository, spec.like, PasswordKey(password))

    async def _secret(self, bucket: str, what: str, ref: SecretKeyRef) -> str:
        if self.read_secret is None:
            raise BucketError(f"bucket {bucket!r}: this service cannot read Secrets for {what}")
        where = f"Secret {ref.namespace}/{ref.name}"
        try:
            data = await self.read_secret(ref.namespace, ref.name)
        except KubeError as exc:  # Forbidden, unreachable: this service cannot use it
            raise BucketError(f"bucket {bucket!r}: {what}: {where}: {exc}") from exc
        if data is None:
            raise BucketError(f"bucket {bucket!r}: {what}: {where} not found")
        value = data.get(ref.key)
        if not value:
            raise BucketError(f"bucket {bucket!r}: {what}: {where} has no key {ref.key!r}")
        return value

    async def _open_config(self, config: BucketConfig) -> OpenBucket:
        try:
            access, secret = config.credentials()
        except ConfigError as exc:
            raise BucketError(str(exc)) from exc
        key: KeyProvider | None = None
        error, retry = "", False
        try:
            key = await configured_key(config, self.read_secret)
        except (ConfigError, ValueError) as exc:
            error = f"bucket {config.name!r}: {exc}" if isinstance(exc, ValueError) else str(exc)
        except KeyUnavailable as exc:
            error, retry = f"bucket {config.name!r}: {exc}", True
        store = MinioStore(config.endpoint, config.bucket, access, secret, secure=config.secure)
        lock = config.object_lock
        policy = LockPolicy(lock.mode, lock.retain_days) if lock is not None else None
        return OpenBucket(
            config.name,
            locked(store, policy, config.repository),
            config.repository,
            config.like,
            key,
            error,
            key_retry=retry,
        )

    def _cached(self, name: str, revision: int) -> OpenBucket | None:
        kept = self._opened.get(name)
        return kept[1] if kept is not None and kept[0] == revision else None

    def _keep(self, name: str, revision: int, bucket: OpenBucket) -> OpenBucket:
        self._opened[name] = (revision, bucket)
        return bucket
