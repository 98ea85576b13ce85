"""Pure StorageClass matching (as Trident): parameters, pool lists, selectors, placement."""

from __future__ import annotations

import pytest

from services.provisioner.matching import (
    NoCapacity,
    NoMatch,
    ParameterError,
    Requirements,
    matching_pools,
    parse_pool_list,
    parse_requirements,
    parse_selector,
    place,
)
from services.provisioner.pools import Pool

BASE = {"backendType": "btrfs", "provisioningType": "thin", "encryption": "false"}


def pool(backend: str, name: str, labels: dict[str, str] | None = None, **attrs: str) -> Pool:
    attributes = {**BASE, "snapshots": "true", "clones": "true", **attrs}
    return Pool(backend, name, attributes, labels or {})


POOLS = [
    pool("fast", "gold", {"tier": "gold", "zone": "a"}, media="nvme", iopsClass="high"),
    pool("fast", "silver", {"tier": "silver", "zone": "b"}, media="ssd"),
    pool("bulk", "default", {"tier": "bronze"}, media="hdd", backendType="dir", snapshots="false"),
    pool("bulk", "archive", {"tier": "bronze", "zone": "a"}, media="hdd", encryption="true"),
]


def ids(pools: list[Pool]) -> list[str]:
    return [p.id for p in pools]


def match(**params: str) -> list[str]:
    return ids(matching_pools(POOLS, parse_requirements(params)))


def test_no_parameters_match_every_pool() -> None:
    assert match() == [p.id for p in POOLS]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"media": "ssd"}, ["fast:silver"]),
        ({"media": "HDD"}, ["bulk:default", "bulk:archive"]),
        ({"snapshots": "true", "media": "hdd"}, ["bulk:archive"]),
        ({"snapshots": "True"}, ["fast:gold", "fast:silver", "bulk:archive"]),
        ({"encryption": "true"}, ["bulk:archive"]),
        ({"backendType": "dir"}, ["bulk:default"]),
        ({"iopsClass": "high"}, ["fast:gold"]),
        ({"provisioningType": "thin", "clones": "true"}, [p.id for p in POOLS]),
    ],
)
def test_required_attributes_narrow_the_pools(params: dict[str, str], expected: list[str]) -> None:
    assert match(**params) == expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=gold", ["fast:gold"]),
        ("tier==gold", ["fast:gold"]),
        ("tier!=bronze", ["fast:gold", "fast:silver"]),
        ("tier in (gold, silver)", ["fast:gold", "fast:silver"]),
        ("tier notin (gold,silver)", ["bulk:default", "bulk:archive"]),
        ("zone", ["fast:gold", "fast:silver", "bulk:archive"]),
        ("!zone", ["bulk:default"]),
        ("tier=bronze; zone=a", ["bulk:archive"]),
    ],
)
def test_the_selector_matches_pool_labels(selector: str, expected: list[str]) -> None:
    assert match(selector=selector) == expected


def test_storage_pools_restrict_by_backend_and_pool_regexes() -> None:
    assert match(storagePools="fast:gold") == ["fast:gold"]
    assert match(storagePools="fast:.*") == ["fast:gold", "fast:silver"]
    assert match(storagePools="fast:gold;bulk:arch.*") == ["fast:gold", "bulk:archive"]
    assert match(storagePools="fast:gold,silver") == ["fast:gold", "fast:silver"]
    assert match(storagePools=".*:default") == ["bulk:default"]
    with pytest.raises(NoMatch):  # regexes match whole names
        match(storagePools="fas:gold;bulk:arch")


def test_storage_pools_and_attributes_both_apply() -> None:
    assert match(storagePools="fast:.*", media="ssd") == ["fast:silver"]


def test_additional_pools_join_whatever_their_attributes() -> None:
    assert match(media="nvme", additionalStoragePools="bulk:archive") == [
        "fast:gold",
        "bulk:archive",
    ]


def test_excluded_pools_leave_last() -> None:
    assert match(excludeStoragePools="fast:.*") == ["bulk:default", "bulk:archive"]
    assert match(
        media="nvme", additionalStoragePools="bulk:.*", excludeStoragePools="bulk:default"
    ) == ["fast:gold", "bulk:archive"]


def test_an_unmet_attribute_is_named_with_what_pools_offer() -> None:
    with pytest.raises(NoMatch) as raised:
        match(media="hybrid")
    text = str(raised.value)
    assert "media=hybrid" in text
    assert "ssd on fast:silver" in text and "nvme on fast:gold" in text


def test_an_unmet_selector_and_pool_list_are_named() -> None:
    with pytest.raises(NoMatch) as raised:
        match(selector="tier=platinum")
    assert "selector tier=platinum" in str(raised.value)
    with pytest.raises(NoMatch) as raised:
        match(storagePools="nowhere:.*")
    assert "storagePools 'nowhere:.*'" in str(raised.value)


def test_requirements_met_only_separately_are_reported_together() -> None:
    with pytest.raises(NoMatch) as raised:
        match(media="nvme", encryption="true")
    assert "no single storage pool meets all of media=nvme, encryption=true" in str(raised.value)


def test_excluding_every_match_is_named() -> None:
    with pytest.raises(NoMatch) as raised:
        match(media="ssd", excludeStoragePools="fast:silver")
    assert "excludeStoragePools 'fast:silver' removed every matching pool (fast:silver)" in str(
        raised.value
    )


def test_no_pools_at_all() -> None:
    with pytest.raises(NoMatch, match="no storage pool is configured"):
        matching_pools([], Requirements({}))


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"speed": "fast"}, "unknown parameter speed"),
        ({"media": "tape"}, "media: 'tape' is not one of hdd, ssd, nvme, hybrid"),
        ({"snapshots": "yes"}, "snapshots: 'yes' is not one of true, false"),
        ({"provisioningType": "fat"}, "provisioningType"),
        ({"storagePools": "nopools"}, "storagePools: entry 'nopools' is not 'backend:pool"),
        ({"storagePools": "fast:"}, "storagePools: entry 'fast:'"),
        ({"additionalStoragePools": "fast:(gold"}, "additionalStoragePools: 'fast:(gold' is not a"),
        ({"excludeStoragePools": " ; "}, "excludeStoragePools: empty pool list"),
        ({"selector": "tier=gold; =x"}, "selector: '=x' is not"),
        ({"selector": "tier in gold"}, "selector: 'tier in gold' is not"),
    ],
)
def test_malformed_parameters_are_named(params: dict[str, str], named: str) -> None:
    with pytest.raises(ParameterError) as raised:
        parse_requirements(params)
    assert named in str(raised.value)


def test_prefixed_parameters_of_other_components_are_ignored() -> None:
    req = parse_requirements({"csi.storage.k8s.io/fstype": "ext4", "media": "ssd"})
    assert req.attributes == {"media": "ssd"}


def test_pool_list_and_selector_parsers() -> None:
    parsed = parse_pool_list("storagePools", " fast : gold , silver ; bulk:.* ")
    assert len(parsed.entries) == 3
    assert parsed.matches(POOLS[1]) and parsed.matches(POOLS[3])
    assert [str(r) for r in parse_selector("a=1; b!=2; c in (x,y); d notin (z); e; !f")] == [
        "a=1",
        "b!=2",
        "c in (x,y)",
        "d notin (z)",
        "e",
        "!f",
    ]


def test_place_picks_the_pool_with_the_most_free_space_that_fits() -> None:
    candidates = POOLS[:3]
    free = {"fast:gold": 100, "fast:silver": 300, "bulk:default": 200}
    assert place(candidates, free, 50).id == "fast:silver"
    assert place(candidates, {**free, "fast:silver": 10}, 150).id == "bulk:default"
    assert place(candidates, {p.id: 100 for p in candidates}, 100).id == "fast:gold"  # ties: first


def test_place_without_room_names_the_largest_free_pool() -> None:
    with pytest.raises(NoCapacity) as raised:
        place(POOLS[:2], {"fast:gold": 10, "fast:silver": 20}, 64)
    assert str(raised.value) == (
        "no matching pool can hold 64 bytes (most free: 20 bytes in fast:silver)"
    )
