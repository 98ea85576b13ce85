"""The only module that imports `minio`: `ObjectStore` over any S3 service.

Blocking calls (the SDK is synchronous); async callers run them in a thread.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import urllib3
from minio import Minio
from minio.error import S3Error

from vessel.objectstore.base import (
    AccessDenied,
    ObjectNotFound,
    ObjectStoreError,
    StoreUnavailable,
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

    def ensure_bucket(self) -> None:
        with self._errors(""):
            if not self._client.bucket_exists(self.bucket):
                self._client.make_bucket(self.bucket)

    def put_bytes(self, key: str, data: bytes) -> None:
        with self._errors(check_key(key)):
            self._client.put_object(self.bucket, key, io.BytesIO(data), len(data))

    def put_file(self, key: str, path: Path) -> None:
        with self._errors(check_key(key)):
            self._client.fput_object(self.bucket, key, str(path))

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
