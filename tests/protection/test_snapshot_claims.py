"""Which claims an app snapshot asks its provisioner for, and how the outcome is judged."""

from __future__ import annotations

from services.protection.snapshot import claims_of, outcome
from vessel.contracts.events import AppRecord
from vessel.contracts.models import ClaimInfo, ResourceRef
from vessel.contracts.protection import ItemResult, ItemState


def test_bound_claims_are_grouped_with_their_own_namespace_and_unbound_ones_skipped() -> None:
    app = AppRecord(
        cluster="cluster-a",
        namespace="shop",
        name="shop",
        grouping="user",
        state="Available",
        claims=[
            ClaimInfo(name="data", requested_bytes=1, volume_name="pvc-1"),
            ClaimInfo(name="cache", requested_bytes=1, volume_name="pvc-2"),
            ClaimInfo(name="pending", requested_bytes=1),
        ],
        resources=[
            ResourceRef(
                api_version="v1", kind="PersistentVolumeClaim", name="cache", namespace="edge"
            ),
        ],
    )
    bound, unbound = claims_of(app)
    assert [(c.namespace, c.claim) for c in bound] == [("shop", "data"), ("edge", "cache")]
    assert [(c.namespace, c.claim) for c in unbound] == [("shop", "pending")]


def item(state: ItemState) -> ItemResult:
    return ItemResult(kind="PersistentVolumeClaim", name="c", state=state)


def test_the_phase_follows_the_claims() -> None:
    assert outcome([]) == "Completed"
    assert outcome([item("Completed"), item("Completed")]) == "Completed"
    assert outcome([item("Completed"), item("Failed")]) == "PartiallyFailed"
    assert outcome([item("Failed"), item("Failed")]) == "Failed"
