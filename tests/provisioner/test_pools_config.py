"""Backend and pool configuration: defaults from capabilities, and every bad input named."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.provisioner.adapters.base import BackendUnavailable
from services.provisioner.adapters.factory import build_backend
from services.provisioner.pools import Pool, build_pools, check_backend_names, default_pools
from vessel.config import BackendConfig, ConfigError, load_settings

BTRFS_CAPS = frozenset({"snapshots", "clones", "expand", "enforces_size"})


def backend(**fields: object) -> BackendConfig:
    return BackendConfig.model_validate({"name": "fast", "type": "btrfs", "path": "/x", **fields})


def test_a_backend_without_pools_has_one_default_pool_from_its_capabilities() -> None:
    [pool] = build_pools(backend(), "btrfs", BTRFS_CAPS)
    assert pool == Pool(
        "fast",
        "default",
        {
            "backendType": "btrfs",
            "provisioningType": "thin",
            "snapshots": "true",
            "clones": "true",
            "encryption": "false",
            "compression": "false",  # opt-in per pool, even where the backend can
        },
        {},
        None,
    )
    [bare] = build_pools(backend(type="dir"), "dir", frozenset())
    assert bare.attributes["snapshots"] == "false" and bare.attributes["clones"] == "false"


def test_configured_pools_carry_attributes_labels_and_capacity() -> None:
    config = backend(
        capacity_bytes=1000,
        pools=[
            {
                "name": "gold",
                "attributes": {"media": "nvme", "iopsClass": "high", "encryption": True},
                "labels": {"tier": "gold"},
                "capacity_bytes": 600,
            },
            {"name": "plain", "attributes": {"snapshots": False}},
        ],
    )
    gold, plain = build_pools(config, "btrfs", BTRFS_CAPS)
    assert gold.id == "fast:gold" and gold.capacity_bytes == 600
    assert gold.attributes["media"] == "nvme" and gold.attributes["iopsClass"] == "high"
    assert gold.attributes["encryption"] == "true" and gold.labels == {"tier": "gold"}
    assert plain.attributes["snapshots"] == "false" and plain.attributes["clones"] == "true"
    assert "media" not in plain.attributes


def test_default_pools_for_built_backends(tmp_path: Path) -> None:
    built = build_backend(BackendConfig(name="local", type="dir", path=tmp_path))
    [pool] = default_pools([built])
    assert pool.id == "local:default" and pool.attributes["backendType"] == "dir"


@pytest.mark.parametrize(
    ("pools", "named"),
    [
        ([{"name": "p", "attributes": {"speed": "fast"}}], "unknown pool attribute speed"),
        ([{"name": "p"}, {"name": "p"}], "duplicate pool name p"),
        ([{"name": "p", "attributes": {"media": "tape"}}], "pools.0.attributes.media"),
        ([{"name": "p", "attributes": {"iopsClass": "a b"}}], "pools.0.attributes.iopsClass"),
        ([{"name": "p", "capacity_bytes": 0}], "pools.0.capacity_bytes"),
        ([{"name": "", "attributes": {}}], "pools.0.name"),
        ([{"name": "p", "color": "red"}], "pools.0.color"),
    ],
)
def test_invalid_pool_configuration_is_named(
    tmp_path: Path, pools: list[dict[str, object]], named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "vessel.yaml"
    config.write_text(
        "clusters:\n  - id: c1\n    kubeconfig: /k\n    backends:\n"
        f"      - {{name: fast, type: dir, path: /x, pools: {pools!r}}}\n".replace("'", '"')
    )
    monkeypatch.setenv("VESSEL_CONFIG", str(config))  # restored afterwards
    with pytest.raises(ConfigError) as raised:
        load_settings(str(config))
    assert named in str(raised.value)
    assert str(config) in str(raised.value)


@pytest.mark.parametrize(
    ("attributes", "caps", "named"),
    [
        ({"snapshots": True}, frozenset(), "attribute snapshots: true, but the dir backend"),
        ({"clones": True}, frozenset({"snapshots"}), "attribute clones: true"),
        ({"provisioningType": "thick"}, BTRFS_CAPS, "provisioningType thick is not offered"),
    ],
)
def test_pools_cannot_promise_what_the_backend_cannot_do(
    attributes: dict[str, object], caps: frozenset[str], named: str
) -> None:
    config = backend(type="dir", pools=[{"name": "p", "attributes": attributes}])
    with pytest.raises(ConfigError) as raised:
        build_pools(config, "dir", caps)
    assert named in str(raised.value) and "backend fast pool p" in str(raised.value)


def test_a_pool_cannot_exceed_its_backend() -> None:
    config = backend(capacity_bytes=100, pools=[{"name": "p", "capacity_bytes": 200}])
    with pytest.raises(ConfigError, match="capacity_bytes 200 exceeds the backend's"):
        build_pools(config, "btrfs", BTRFS_CAPS)


def test_duplicate_backend_names_are_named() -> None:
    with pytest.raises(ConfigError, match="cluster c1: duplicate backend name fast"):
        check_backend_names([backend(), backend(), backend(name="other")], "c1")
    check_backend_names([backend(), backend(name="other")], "c1")


def test_a_missing_path_or_a_path_that_is_not_btrfs_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    with pytest.raises(BackendUnavailable, match=f"backend d: {missing} is not a directory"):
        build_backend(BackendConfig(name="d", type="dir", path=missing))
    with pytest.raises(BackendUnavailable, match="is not a mounted btrfs filesystem"):
        build_backend(BackendConfig(name="b", type="btrfs", path=tmp_path))
