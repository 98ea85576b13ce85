"""Pure rules: auto-grow policy, class policy, clone sources and import annotations."""

from __future__ import annotations

from typing import Any

import pytest

from services.provisioner.autogrow import (
    AutoGrowPolicy,
    grown_size,
    parse_autogrow,
    quantity_text,
)
from services.provisioner.claims import ClaimRejected, DataSource, data_source, import_source
from services.provisioner.classes import class_policy
from services.provisioner.matching import ParameterError
from vessel.kube.objects import KubeObject

MiB, GiB = 1 << 20, 1 << 30


def test_no_threshold_means_no_auto_grow() -> None:
    assert parse_autogrow({}) is None
    assert parse_autogrow(None) is None


def test_policy_defaults_and_forms() -> None:
    assert parse_autogrow({"autoGrowThresholdPercent": "80"}) == AutoGrowPolicy(80, None, 10.0)
    assert parse_autogrow(
        {"autoGrowThresholdPercent": "75.5", "autoGrowStep": "1Gi", "autoGrowMaxSize": "10Gi"}
    ) == AutoGrowPolicy(75.5, GiB, None, 10 * GiB)
    assert parse_autogrow({"autoGrowThresholdPercent": "90", "autoGrowStep": "25%"}) == (
        AutoGrowPolicy(90, None, 25.0)
    )


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"autoGrowStep": "1Gi"}, "autoGrowStep needs autoGrowThresholdPercent"),
        ({"autoGrowThresholdPercent": "high"}, "autoGrowThresholdPercent: 'high' is not a number"),
        ({"autoGrowThresholdPercent": "100"}, "not within 1-99"),
        ({"autoGrowThresholdPercent": "0"}, "not within 1-99"),
        ({"autoGrowThresholdPercent": "80", "autoGrowStep": "lots"}, "autoGrowStep: 'lots'"),
        ({"autoGrowThresholdPercent": "80", "autoGrowStep": "x%"}, "is not a percentage"),
        ({"autoGrowThresholdPercent": "80", "autoGrowStep": "0%"}, "not within 0-1000%"),
        ({"autoGrowThresholdPercent": "80", "autoGrowMaxSize": "-1Gi"}, "autoGrowMaxSize"),
    ],
)
def test_bad_auto_grow_parameters_are_named(params: dict[str, str], named: str) -> None:
    with pytest.raises(ParameterError) as raised:
        parse_autogrow(params)
    assert named in str(raised.value)


def test_grown_size_below_threshold_is_none() -> None:
    policy = AutoGrowPolicy(80, None, 50.0)
    assert grown_size(policy, 100 * MiB, 79 * MiB) is None
    assert grown_size(policy, 100 * MiB, 80 * MiB) == 150 * MiB


def test_grown_size_steps_round_to_mib_and_stop_at_the_maximum() -> None:
    assert grown_size(AutoGrowPolicy(50, 1000, None), 10 * MiB, 9 * MiB) == 11 * MiB
    capped = AutoGrowPolicy(50, GiB, None, 100 * MiB)
    assert grown_size(capped, 64 * MiB, 60 * MiB) == 100 * MiB
    assert grown_size(capped, 100 * MiB, 99 * MiB) is None


@pytest.mark.parametrize(
    ("size", "text"),
    [(GiB, "1Gi"), (1536 * MiB, "1536Mi"), (3 << 40, "3Ti"), (4096, "4Ki"), (1000, "1000")],
)
def test_quantity_text(size: int, text: str) -> None:
    assert quantity_text(size) == text


def storage_class(**fields: Any) -> KubeObject:
    return {"metadata": {"name": "sc"}, **fields}


def test_class_policy_names_the_class_and_parameter() -> None:
    with pytest.raises(ClaimRejected) as raised:
        class_policy(storage_class(parameters={"media": "tape"}))
    assert raised.value.reason == "InvalidParameters"
    assert str(raised.value).startswith("StorageClass sc: media: 'tape'")


def test_auto_grow_needs_a_class_that_allows_expansion() -> None:
    params = {"autoGrowThresholdPercent": "80"}
    with pytest.raises(ClaimRejected, match="needs allowVolumeExpansion: true"):
        class_policy(storage_class(parameters=params))
    _, policy = class_policy(storage_class(parameters=params, allowVolumeExpansion=True))
    assert policy is not None and policy.threshold_percent == 80


def claim(annotations: dict[str, str] | None = None, **spec: Any) -> KubeObject:
    meta: KubeObject = {"name": "c", "namespace": "ns", "uid": "u"}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": spec}


def test_data_sources() -> None:
    assert data_source(claim()) is None
    pvc = {"kind": "PersistentVolumeClaim", "name": "src"}
    assert data_source(claim(dataSource=pvc)) == DataSource("PersistentVolumeClaim", "src")
    snap = {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "s1"}
    assert data_source(claim(dataSourceRef=snap)) == DataSource("VolumeSnapshot", "s1")


@pytest.mark.parametrize(
    ("ref", "named"),
    [
        ({"kind": "VolumeSnapshot", "name": "s"}, "is not supported"),
        ({"apiGroup": "example.com", "kind": "Populator", "name": "p"}, "example.com/Populator"),
        ({"kind": "PersistentVolumeClaim", "name": ""}, "names no object"),
        ({"kind": "PersistentVolumeClaim", "name": "x", "namespace": "other"}, "namespace other"),
    ],
)
def test_unsupported_data_sources_are_named(ref: KubeObject, named: str) -> None:
    with pytest.raises(ClaimRejected) as raised:
        data_source(claim(dataSource=ref))
    assert raised.value.reason == "InvalidDataSource" and named in str(raised.value)


def test_import_annotation() -> None:
    annotation = "vessel.io/import-volume"
    assert import_source(claim()) is None
    assert import_source(claim({annotation: "local/legacy/data"})) == ("local", "legacy/data")
    for bad in ("local", "local/", "/abs", "local//abs", "local/../etc", "local/a/../../b"):
        with pytest.raises(ClaimRejected) as raised:
            import_source(claim({annotation: bad}))
        assert raised.value.reason == "ImportFailed" and annotation in str(raised.value)
    both = claim({annotation: "local/x"}, dataSource={"kind": "PersistentVolumeClaim", "name": "y"})
    with pytest.raises(ClaimRejected, match="exclude each other"):
        import_source(both)
