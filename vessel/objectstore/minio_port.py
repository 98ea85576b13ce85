"""The only module that imports `minio`: `ObjectStore` over any S3 service.

Blocking calls (the SDK is synchronous); async callers run them in a thread.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE, GOVERNANCE
from minio.error import S3Error
from minio.retention import Retention

from vessel.objectstore.base import (
    AccessDenied,
    LockUnsupported,
    ObjectLocked,
    ObjectNotFound,
    ObjectStoreError,
    ObjectVersion,
    Retain,
    StoreUnavailable,
    Versions,
    check_key,
)

_NOT_FOUND = {"NoSuchKey", "NoSuchBucket", "NoSuchObject"}
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


class MinioStore:
    def __init__(
        self, endpoint: str, bucket: str, access_key: str, secret_key: str, *, secure: bool = False
    ) -> None:
        self.bucket = bucket
        self.endpoint = endpoint
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=60),
            maxsize=16,
            retries=urllib3.Retry(
                total=3, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)
            ),
        )
        self._client = Minio(endpoint, access_key, secret_key, secure=secure, http_client=http)
        self._locking: bool | None = None  # S3 never turns object lock off once on

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        where = f"s3://{self.bucket}/{key}"
        try:
            yield
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                raise ObjectNotFound(f"{where}: not found ({exc.code})") from exc
            if exc.code in _DENIED:
                raise AccessDenied(f"{where}: access denied ({exc.code})") from exc
            raise ObjectStoreError(f"{where}: {exc.code}: {exc.message}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreUnavailable(f"{where}: object store unreachable: {exc}") from exc

    def ensure_bucket(self, object_lock: bool = False) -> None:
        with self._errors(""):
            if not self._client.bucket_exists(self.bucket):
                self._client.make_bucket(self.bucket, object_lock=object_lock)
                self._locking = object_lock
                return
        if object_lock and not self.locking():
            raise LockUnsupported(
                f"s3://{self.bucket}: the bucket exists without object lock, but its setting "
                "asks for it; S3 enables object lock only when a bucket is created: create a "
                "new bucket for it or remove `object_lock` from the setting"
            )

    def locking(self) -> bool:
        if self._locking is None:
            try:
                with self._errors(""):
                    self._client.get_object_lock_config(self.bucket)
                self._locking = True
            except ObjectStoreError as exc:
                if "ObjectLockConfigurationNotFound" not in str(exc):
                    raise
                self._locking = False
        return self._locking

    def _retention(self, key: str, retain: Retain | None) -> Retention | None:
        if retain is None:
            return None
        if not self.locking():
            raise LockUnsupported(f"s3://{self.bucket}/{key}: the bucket has no object lock")
        return Retention(GOVERNANCE if retain.mode == "governance" else COMPLIANCE, retain.until)

    def put_bytes(self, key: str, data: bytes, retain: Retain | None = None) -> None:
        retention = self._retention(check_key(key), retain)
        with self._errors(key):
            self._client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), retention=retention
            )

    def put_file(self, key: str, path: Path, retain: Retain | None = None) -> None:
        retention = self._retention(check_key(key), retain)
        with self._errors(key):
            self._client.fput_object(self.bucket, key, str(path), retention=retention)

    def get_bytes(self, key: str) -> bytes:
        with self._errors(check_key(key)):
            response = self._client.get_object(self.bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        try:
            return self._get_range(key, offset, length)
        except ObjectStoreError as exc:
            if "InvalidRange" in str(exc):
                return b""  # the object ends before `offset`, as a local file would
            raise

    def _get_range(self, key: str, offset: int, length: int) -> bytes:
        with self._errors(check_key(key)):
            response = self._client.get_object(self.bucket, key, offset=offset, length=length)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

    def get_file(self, key: str, path: Path) -> None:
        with self._errors(check_key(key)):
            self._client.fget_object(self.bucket, key, str(path))

    def exists(self, key: str) -> bool:
        try:
            with self._errors(check_key(key)):
                self._client.stat_object(self.bucket, key)
        except ObjectNotFound:
            return False
        return True

    def list(self, prefix: str) -> list[str]:
        with self._errors(prefix):
            return sorted(
                o.object_name
                for o in self._client.list_objects(self.bucket, prefix, recursive=True)
                if o.object_name is not None
            )

    def delete(self, key: str) -> None:
        with self._errors(check_key(key)):
            self._client.remove_object(self.bucket, key)

    def retention(self, key: str, version_id: str | None = None) -> Retain | None:
        with self._errors(check_key(key)):
            headers = self._client.stat_object(self.bucket, key, version_id=version_id).metadata
        if headers is None:
            return None
        mode = str(headers.get("x-amz-object-lock-mode") or "").lower()
        until = headers.get("x-amz-object-lock-retain-until-date")
        if mode not in ("governance", "compliance") or not until:
            return None
        return Retain(mode, datetime.fromisoformat(str(until)).astimezone(UTC))  # type: ignore[arg-type]

    def extend_retention(self, key: str, retain: Retain) -> None:
        current = self.retention(key)
        if current is not None and current.until >= retain.until:
            return  # never shortened (S3 refuses that anyway without a bypass)
        mode = current.mode if current is not None else retain.mode
        retention = self._retention(key, Retain(mode, retain.until))
        assert retention is not None
        with self._errors(key):
            self._client.set_object_retention(self.bucket, key, retention)

    def versions(self, prefix: str) -> Versions:
        never = datetime.min.replace(tzinfo=UTC)
        with self._errors(prefix):
            listed = [
                (o.object_name, o.last_modified or never, str(o.is_latest).lower() == "true", -i, o)
                for i, o in enumerate(
                    self._client.list_objects(
                        self.bucket, prefix, recursive=True, include_version=True
                    )
                )
                if o.object_name is not None
            ]
        # Stores record times in seconds. Within one second: the current version is the
        # newest, and S3 lists a key's versions newest first.
        listed.sort(key=lambda e: e[:4])
        return [
            ObjectVersion(name, o.version_id or "null", modified, bool(o.is_delete_marker))
            for name, modified, _, _, o in listed
        ]

    def delete_version(self, key: str, version_id: str) -> None:
        try:
            with self._errors(check_key(key)):
                self._client.remove_object(self.bucket, key, version_id=version_id)
        except AccessDenied:
            try:
                retain = self.retention(key, version_id)
            except ObjectStoreError:
                retain = None
            if retain is not None and retain.until > datetime.now(UTC):
                raise ObjectLocked(f"s3://{self.bucket}/{key}", key, retain.until) from None
            raise
