"""Every `ObjectStore` honours the protocol's contract, against a real S3 service."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vessel.objectstore.base import AccessDenied, ObjectNotFound, ObjectStore, StoreUnavailable
from vessel.objectstore.local import LocalStore
from vessel.objectstore.minio_port import MinioStore
from vessel_dev.rig.processes import S3Server, free_port

INVALID_KEYS = ["", "/abs", "a/../b", "a//b", "./a", "a/", ".."]


class ObjectStoreConformance:
    """The contract; subclasses provide an empty `store`."""

    @pytest.fixture
    def store(self) -> ObjectStore:
        raise NotImplementedError

    @pytest.mark.parametrize("data", [b"", b"hello", bytes(range(256)) * 64])
    def test_bytes_roundtrip(self, store: ObjectStore, data: bytes) -> None:
        store.put_bytes("dir/obj.bin", data)
        assert store.get_bytes("dir/obj.bin") == data

    def test_file_roundtrip(self, store: ObjectStore, tmp_path: Path) -> None:
        source = tmp_path / "source.bin"
        source.write_bytes(os.urandom(12 << 20))  # large enough for a multipart upload
        store.put_file("files/big.bin", source)
        dest = tmp_path / "out" / "dest.bin"
        dest.parent.mkdir()
        dest.write_bytes(b"previous local content")
        store.get_file("files/big.bin", dest)
        assert dest.read_bytes() == source.read_bytes()
        assert store.get_bytes("files/big.bin") == source.read_bytes()
        assert sorted(p.name for p in dest.parent.iterdir()) == ["dest.bin"]

    def test_range_reads(self, store: ObjectStore) -> None:
        data = os.urandom(100_000)
        store.put_bytes("r", data)
        assert store.get_range("r", 0, 10) == data[:10]
        assert store.get_range("r", 65_536, 1000) == data[65_536:66_536]
        assert store.get_range("r", 99_990, 100) == data[99_990:]
        with pytest.raises(ObjectNotFound):
            store.get_range("missing", 0, 1)

    def test_overwrite_replaces_the_whole_object(self, store: ObjectStore) -> None:
        store.put_bytes("k", b"a long first version of the object" * 100)
        store.put_bytes("k", b"short")
        assert store.get_bytes("k") == b"short"
        assert store.list("") == ["k"]

    def test_get_missing_raises_not_found_naming_bucket_and_key(
        self, store: ObjectStore, tmp_path: Path
    ) -> None:
        store.put_bytes("present", b"x")
        for call in (
            lambda: store.get_bytes("backups/missing.json"),
            lambda: store.get_file("backups/missing.json", tmp_path / "missing.json"),
        ):
            with pytest.raises(ObjectNotFound) as raised:
                call()
            assert store.bucket in str(raised.value)
            assert "backups/missing.json" in str(raised.value)
        assert not (tmp_path / "missing.json").exists()

    def test_exists(self, store: ObjectStore) -> None:
        assert not store.exists("a/b")
        store.put_bytes("a/b", b"x")
        assert store.exists("a/b")
        assert not store.exists("a")  # a prefix is not an object
        store.delete("a/b")
        assert not store.exists("a/b")

    def test_list_by_prefix_in_lexical_order(self, store: ObjectStore) -> None:
        keys = ["p/b", "p/a/2", "q/x", "p/a/10", "p2/y", "p/a/1"]
        for key in keys:
            store.put_bytes(key, key.encode())
        assert store.list("p/") == ["p/a/1", "p/a/10", "p/a/2", "p/b"]
        assert store.list("p/a/") == ["p/a/1", "p/a/10", "p/a/2"]
        assert store.list("p") == ["p/a/1", "p/a/10", "p/a/2", "p/b", "p2/y"]
        assert store.list("") == sorted(keys)
        assert store.list("nothing/") == []

    def test_delete_removes_and_missing_is_fine(self, store: ObjectStore) -> None:
        store.put_bytes("gone", b"x")
        store.put_bytes("kept", b"y")
        store.delete("gone")
        store.delete("gone")
        store.delete("never/existed")
        assert store.list("") == ["kept"]

    def test_ensure_bucket_is_idempotent(self, store: ObjectStore) -> None:
        store.put_bytes("k", b"v")
        store.ensure_bucket()
        assert store.get_bytes("k") == b"v"

    @pytest.mark.parametrize("key", INVALID_KEYS)
    def test_invalid_keys_are_refused(self, store: ObjectStore, tmp_path: Path, key: str) -> None:
        local = tmp_path / "local"
        local.write_bytes(b"x")
        calls: list[Callable[[], Any]] = [
            lambda: store.put_bytes(key, b"x"),
            lambda: store.put_file(key, local),
            lambda: store.get_bytes(key),
            lambda: store.get_file(key, tmp_path / "out"),
            lambda: store.exists(key),
            lambda: store.delete(key),
        ]
        for call in calls:
            with pytest.raises(ValueError, match="invalid object key"):
                call()
        assert store.list("") == []
        assert not (tmp_path / "out").exists()


class TestLocalStore(ObjectStoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> ObjectStore:
        return LocalStore(tmp_path / "bucket-root")


class TestMinioStore(ObjectStoreConformance):
    @pytest.fixture
    def store(self, bucket: MinioStore) -> ObjectStore:
        return bucket

    @pytest.mark.parametrize("wrong", ["secret", "access"])
    def test_wrong_credentials_are_access_denied(
        self, bucket: MinioStore, s3_server: S3Server, wrong: str
    ) -> None:
        bucket.put_bytes("private", b"secret data")
        access, secret = s3_server.access_key, s3_server.secret_key
        if wrong == "secret":
            secret = "not-the-" + secret
        else:
            access = "nobody"
        intruder = MinioStore(s3_server.endpoint, bucket.bucket, access, secret)
        for call in (
            lambda: intruder.get_bytes("private"),
            lambda: intruder.put_bytes("private", b"overwritten"),
            lambda: intruder.list(""),
            lambda: intruder.exists("private"),
        ):
            with pytest.raises(AccessDenied) as raised:
                call()
            assert bucket.bucket in str(raised.value)
        assert bucket.get_bytes("private") == b"secret data"

    def test_unreachable_endpoint_is_unavailable(self) -> None:
        store = MinioStore(f"127.0.0.1:{free_port()}", "nowhere", "key", "secret")
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as raised:
            store.get_bytes("some/key")
        assert time.monotonic() - started < 20
        assert "s3://nowhere/some/key" in str(raised.value)
        with pytest.raises(StoreUnavailable):
            store.put_bytes("some/key", b"x")
