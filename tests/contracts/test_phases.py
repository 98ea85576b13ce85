"""Operation phases move one way: forward, or staying; never back, never out of an end."""

from __future__ import annotations

import pytest

from vessel.contracts.operations import (
    TERMINAL,
    Operation,
    Phase,
    PhaseTransitionError,
    check_transition,
)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (Phase.NEW, Phase.IN_PROGRESS),
        (Phase.NEW, Phase.FAILED),
        (Phase.IN_PROGRESS, Phase.IN_PROGRESS),
        (Phase.IN_PROGRESS, Phase.COMPLETED),
        (Phase.IN_PROGRESS, Phase.CANCELING),
        (Phase.CANCELING, Phase.CANCELED),
        (Phase.COMPLETED, Phase.COMPLETED),
    ],
)
def test_allowed(old: Phase, new: Phase) -> None:
    check_transition("op-1", old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (Phase.IN_PROGRESS, Phase.NEW),
        (Phase.COMPLETED, Phase.IN_PROGRESS),
        (Phase.FAILED, Phase.COMPLETED),
        (Phase.CANCELED, Phase.IN_PROGRESS),
        (Phase.CANCELING, Phase.COMPLETED),
        (Phase.CANCELING, Phase.IN_PROGRESS),
    ],
)
def test_refused_naming_the_operation_and_both_phases(old: Phase, new: Phase) -> None:
    with pytest.raises(PhaseTransitionError) as refused:
        check_transition("op-1", old, new)
    assert str(refused.value) == f"operation op-1 cannot go from {old} to {new}"


def test_ends_go_nowhere_and_canceling_is_not_an_end() -> None:
    for end in TERMINAL:
        assert [new for new in Phase if new != end and _allowed(end, new)] == []
    assert Phase.CANCELING not in TERMINAL
    assert [new for new in Phase if new != Phase.CANCELING and _allowed(Phase.CANCELING, new)] == [
        Phase.CANCELED
    ]


def _allowed(old: Phase, new: Phase) -> bool:
    try:
        check_transition("x", old, new)
    except PhaseTransitionError:
        return False
    return True


def test_phases_are_stored_as_their_names() -> None:
    op = Operation(id="op-1", kind="backup", phase=Phase.CANCELING)
    assert '"phase":"Canceling"' in op.model_dump_json()
    assert Operation.model_validate_json(op.model_dump_json()).phase is Phase.CANCELING
