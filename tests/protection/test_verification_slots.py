"""What a verification settles before it restores, on real NATS and a real bucket: its
cluster's slots (one at a time by default, the rest queued oldest first, a dead holder's
slot taken over), which backup it verifies, and its scratch namespaces' names."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.protection.bucket_catalog import CatalogError
from services.protection.verification_steps import Slots, newest_backup, scratch_names
from vessel.bus.nats_port import Bus
from vessel.contracts.state import BACKUP_LISTING, backup_key
from vessel.objectstore.minio_port import MinioStore

pytestmark = pytest.mark.timeout(60)


async def test_one_slot_per_cluster_the_rest_queue_in_order(bus: Bus) -> None:
    slots = Slots(await bus.kv(f"t_locks_{uuid.uuid4().hex[:8]}"), per_cluster=1)
    running = {"v1", "v2", "v3", "w1"}

    async def alive(op_id: str) -> bool:
        return op_id in running

    assert await slots.take("a", "v1", alive) is None
    assert await slots.take("a", "v1", alive) is None  # a repeated step keeps its slot
    assert await slots.take("a", "v2", alive) == "v1"
    assert await slots.take("a", "v3", alive) == "v1"
    assert await slots.take("b", "w1", alive) is None  # another cluster has its own
    assert await slots.queued("a") == ["v2", "v3"]
    await slots.release("a", "v1")
    assert await slots.take("a", "v2", alive) is None
    assert await slots.queued("a") == ["v3"]
    running.discard("v2")  # ended without freeing its slot
    assert await slots.take("a", "v3", alive) is None
    assert await slots.queued("a") == []


def listing(store: MinioStore, backup_id: str, app_id: str, completed: datetime) -> None:
    doc = {
        "format": "vessel.backup/2",
        "backup_id": backup_id,
        "app_id": app_id,
        "cluster": "c1",
        "namespace": "shop",
        "namespaces": ["shop", "shop-db"],
        "created": completed.isoformat(),
        "completed": completed.isoformat(),
        "volumes": [],
    }
    store.put_bytes(backup_key(backup_id, BACKUP_LISTING), json.dumps(doc).encode())


def test_the_backup_verified_is_the_named_or_the_newest(bucket: MinioStore) -> None:
    t = datetime(2026, 12, 1, tzinfo=UTC)
    listing(bucket, "b-old", "c1.shop.shop", t)
    listing(bucket, "b-new", "c1.shop.shop", t + timedelta(days=1))
    listing(bucket, "b-other", "c1.other.other", t + timedelta(days=2))
    bucket.put_bytes(backup_key("b-broken", BACKUP_LISTING), b"{not json")
    assert newest_backup(bucket, "c1.shop.shop", None).backup_id == "b-new"
    assert newest_backup(bucket, "c1.shop.shop", "b-old").backup_id == "b-old"
    with pytest.raises(CatalogError, match=r"b-other is a backup of c1\.other\.other"):
        newest_backup(bucket, "c1.shop.shop", "b-other")
    with pytest.raises(CatalogError, match="b-broken: unreadable listing"):
        newest_backup(bucket, "c1.shop.shop", "b-broken")
    with pytest.raises(CatalogError, match=r"app c1\.none\.none has no backup in this bucket"):
        newest_backup(bucket, "c1.none.none", None)


def test_scratch_namespaces_are_named_after_the_verification() -> None:
    names = scratch_names("verify-1", ["shop", "shop-db"])
    assert names["shop"].startswith("vessel-verify-") and names["shop-db"] == names["shop"] + "-1"
    assert scratch_names("verify-1", ["shop"]) == {"shop": names["shop"]}
    assert scratch_names("verify-2", ["shop"]) != {"shop": names["shop"]}
    assert all(len(n) <= 63 for n in names.values())
