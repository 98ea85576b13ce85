"""Pure decisions about claims: which need a volume, which class, what PV answers them."""

from __future__ import annotations

from typing import Any

import pytest

from services.provisioner.claims import (
    DEFAULT_CLASS_ANNOTATION,
    ClaimRejected,
    is_ours,
    needs_volume,
    parse_claim,
    persistent_volume,
    pick_class,
)
from vessel.config import PROVISIONER_NAME
from vessel.kube.objects import KubeObject


def claim(
    *,
    storage_class: str | None = "fast",
    size: object = "1Gi",
    modes: list[str] | None = None,
    **extra: Any,
) -> KubeObject:
    spec: KubeObject = {"resources": {"requests": {"storage": size}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    if modes is not None:
        spec["accessModes"] = modes
    obj: KubeObject = {
        "metadata": {"namespace": "shop", "name": "data", "uid": "1234-abcd"},
        "spec": spec,
    }
    for key, value in extra.items():
        obj[key] = value
    return obj


def storage_class(name: str, *, default: bool = False, **extra: Any) -> KubeObject:
    meta: KubeObject = {"name": name}
    if default:
        meta["annotations"] = {DEFAULT_CLASS_ANNOTATION: "true"}
    return {"metadata": meta, "provisioner": PROVISIONER_NAME, **extra}


CLASSES = [storage_class("slow"), storage_class("fast"), storage_class("std", default=True)]


def test_a_pending_unbound_claim_needs_a_volume() -> None:
    assert needs_volume(claim())
    assert needs_volume(claim(status={"phase": "Pending"}))


@pytest.mark.parametrize(
    "changes",
    [
        {"status": {"phase": "Bound"}},
        {"status": {"phase": "Lost"}},
        {"metadata": {"name": "d", "deletionTimestamp": "2024-01-01T00:00:00Z"}},
    ],
)
def test_bound_lost_or_deleting_claims_need_nothing(changes: KubeObject) -> None:
    assert not needs_volume(claim(**changes))


def test_a_claim_with_a_volume_name_needs_nothing() -> None:
    bound = claim()
    bound["spec"]["volumeName"] = "pv-1"
    assert not needs_volume(bound)


def test_pick_class_finds_the_named_class() -> None:
    assert pick_class(claim(storage_class="slow"), CLASSES) is CLASSES[0]
    assert pick_class(claim(storage_class="fast"), CLASSES) is CLASSES[1]


def test_pick_class_falls_back_to_the_default_class() -> None:
    assert pick_class(claim(storage_class=None), CLASSES) is CLASSES[2]


def test_pick_class_without_a_default_is_none() -> None:
    assert pick_class(claim(storage_class=None), CLASSES[:2]) is None
    annotated_false = storage_class("x")
    annotated_false["metadata"]["annotations"] = {DEFAULT_CLASS_ANNOTATION: "false"}
    assert pick_class(claim(storage_class=None), [annotated_false]) is None


def test_a_named_class_is_not_replaced_by_the_default() -> None:
    with pytest.raises(ClaimRejected) as raised:
        pick_class(claim(storage_class="gold"), CLASSES)
    assert raised.value.reason == "ProvisioningFailed"
    assert '"gold"' in str(raised.value)


def test_parse_claim_reads_the_request() -> None:
    req = parse_claim(claim(), CLASSES[1])
    assert (req.namespace, req.name, req.uid) == ("shop", "data", "1234-abcd")
    assert req.size_bytes == 1073741824
    assert req.size_text == "1Gi"
    assert req.access_modes == ["ReadWriteOnce"]
    assert req.volume_mode == "Filesystem"
    assert req.storage_class is CLASSES[1]
    assert req.volume_id == "pvc-1234-abcd"


@pytest.mark.parametrize(
    ("size", "expected"), [("500M", 500_000_000), ("2Ti", 2 << 40), ("4096", 4096), (1024, 1024)]
)
def test_parse_claim_understands_kubernetes_quantities(size: object, expected: int) -> None:
    assert parse_claim(claim(size=size), CLASSES[1]).size_bytes == expected


@pytest.mark.parametrize("size", ["lots", "", "10x", "1.5", "-1Gi", "0"])
def test_malformed_or_non_positive_sizes_are_rejected(size: str) -> None:
    with pytest.raises(ClaimRejected) as raised:
        parse_claim(claim(size=size), CLASSES[1])
    assert raised.value.reason == "InvalidSize"
    assert "spec.resources.requests.storage" in str(raised.value)


def test_a_claim_without_a_size_is_rejected() -> None:
    bare = claim()
    del bare["spec"]["resources"]
    with pytest.raises(ClaimRejected) as raised:
        parse_claim(bare, CLASSES[1])
    assert raised.value.reason == "InvalidSize"


@pytest.mark.parametrize("mode", ["ReadWriteMany", "ReadWriteOnce,ReadWriteMany"])
def test_shared_access_modes_are_unsupported(mode: str) -> None:
    with pytest.raises(ClaimRejected) as raised:
        parse_claim(claim(modes=mode.split(",")), CLASSES[1])
    assert raised.value.reason == "UnsupportedAccessMode"
    assert "ReadWriteMany" in str(raised.value)


def test_supported_access_modes_and_block_mode_pass_through() -> None:
    obj = claim(modes=["ReadWriteOncePod", "ReadOnlyMany"])
    obj["spec"]["volumeMode"] = "Block"
    req = parse_claim(obj, CLASSES[1])
    assert req.access_modes == ["ReadWriteOncePod", "ReadOnlyMany"]
    assert req.volume_mode == "Block"


def test_is_ours_compares_the_provisioner() -> None:
    assert is_ours(storage_class("mine"))
    assert not is_ours({"metadata": {"name": "x"}, "provisioner": "ebs.csi.aws.com"})
    assert not is_ours({"metadata": {"name": "x"}})


def test_persistent_volume_answers_the_claim() -> None:
    req = parse_claim(claim(size="5Gi"), storage_class("fast", reclaimPolicy="Retain"))
    pv = persistent_volume(req, "eu-1", "local", "/var/lib/vessel/pvc-1234-abcd")
    assert pv["kind"] == "PersistentVolume"
    assert pv["metadata"]["name"] == "pvc-1234-abcd"
    assert pv["metadata"]["labels"] == {"vessel.io/cluster": "eu-1", "vessel.io/backend": "local"}
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == PROVISIONER_NAME
    spec = pv["spec"]
    assert spec["claimRef"] == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "namespace": "shop",
        "name": "data",
        "uid": "1234-abcd",
    }
    assert spec["persistentVolumeReclaimPolicy"] == "Retain"
    assert spec["hostPath"] == {"path": "/var/lib/vessel/pvc-1234-abcd", "type": "Directory"}
    assert spec["capacity"] == {"storage": "5Gi"}
    assert spec["storageClassName"] == "fast"
    assert spec["accessModes"] == ["ReadWriteOnce"]
    assert spec["volumeMode"] == "Filesystem"


def test_persistent_volume_reclaim_policy_defaults_to_delete() -> None:
    req = parse_claim(claim(), storage_class("fast"))
    pv = persistent_volume(req, "eu-1", "local", "/v")
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
