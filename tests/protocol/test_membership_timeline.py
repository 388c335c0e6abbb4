"""MembershipTimeline: which table governs each round, bounded, idempotent, order-independent."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import ConsensusError
from protocol.membership import (
    Membership,
    MembershipError,
    MembershipTimeline,
    miners_at,
    stakes_at,
)


def key(i: int) -> bytes:
    return bytes([i]) * 32


def table(i: int) -> Membership:
    """Distinct tables: miner i, validator i with stake i + 1."""
    return Membership.of([key(i)], [(key(100 + i), i + 1)])


def test_lookup_takes_the_latest_entry_at_or_before_the_round() -> None:
    timeline = MembershipTimeline([(0, table(0)), (6, table(1)), (18, table(2))])
    assert [timeline.at(r) for r in (0, 5, 6, 17, 18, 10_000)] == [
        table(0), table(0), table(1), table(1), table(2), table(2)]
    assert timeline.miners_at(7) == (key(1),)
    assert timeline.validators_at(18) == ((key(102), 3),)
    assert timeline.latest == table(2)


def test_set_is_idempotent_and_replaces_a_provisional_entry() -> None:
    timeline = MembershipTimeline.constant(table(0))
    revision = timeline.revision
    assert not timeline.set(0, table(0)) and timeline.revision == revision
    assert timeline.set(6, table(1)) and timeline.revision == revision + 1
    assert timeline.set(6, table(2))  # the settled read replaces the provisional one
    assert timeline.at(6) == table(2) and len(timeline) == 2
    # an epoch with an unchanged table is kept too, so a snapshot read late (out of order)
    # cannot take over the rounds of later epochs
    assert timeline.set(12, table(2)) and len(timeline) == 3
    assert timeline.set(9, table(3))
    assert [timeline.at(r) for r in (2, 6, 9, 11, 12)] == [
        table(0), table(2), table(3), table(3), table(2)]


def test_the_window_is_bounded_and_older_rounds_get_the_oldest_kept_entry() -> None:
    timeline = MembershipTimeline(keep=3)
    for i in range(6):
        timeline.set(6 * i, table(i))
    assert [first for first, _ in timeline.entries()] == [18, 24, 30]
    assert timeline.at(0) == table(3)  # documented: older than the window -> oldest kept
    assert not timeline.set(0, table(0))  # would be dropped at once
    assert timeline.at(25) == table(4)


def test_errors() -> None:
    with pytest.raises(MembershipError, match="empty"):
        MembershipTimeline().at(0)
    with pytest.raises(MembershipError):
        MembershipTimeline(keep=0)
    with pytest.raises(ConsensusError):  # MembershipError is a ConsensusError
        MembershipTimeline().set(-1, table(0))
    with pytest.raises(MembershipError, match="sorted"):
        Membership((key(2), key(1)), ())


def test_lookups_accept_a_timeline_a_function_or_a_fixed_table() -> None:
    timeline = MembershipTimeline([(0, table(0)), (4, table(1))])
    assert stakes_at(timeline)(5) == table(1).validators
    assert stakes_at([(key(9), 1)])(123) == ((key(9), 1),)
    assert stakes_at(lambda r: [(key(r), 1)])(7) == [(key(7), 1)]
    assert miners_at(timeline)(3) == (key(0),)
    assert miners_at([key(1), key(1)])(0) == frozenset({key(1)})


entries = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 4)), max_size=12)


def reference(sets: list[tuple[int, int]], round_index: int) -> int | None:
    """The table index of the last set at the largest first_round <= round_index."""
    latest: dict[int, int] = {}
    for first, index in sets:
        latest[first] = index
    before = [f for f in latest if f <= round_index]
    return latest[max(before)] if before else None


@settings(max_examples=300, deadline=None)
@given(entries, st.integers(0, 70))
def test_unbounded_lookups_match_a_plain_map(sets: list[tuple[int, int]], round_index: int
                                             ) -> None:
    timeline = MembershipTimeline(keep=100)
    for first, index in sets:
        timeline.set(first, table(index))
        timeline.set(first, table(index))  # idempotent
    expected = reference(sets, round_index)
    if expected is None:
        if sets:  # before every entry: the oldest one
            assert timeline.at(round_index) == timeline.entries()[0][1]
        return
    assert timeline.at(round_index) == table(expected)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=20), st.integers(1, 4))
def test_appending_epochs_in_order_keeps_recent_rounds_exact(
    per_epoch: list[int], keep: int
) -> None:
    """A node feeding one snapshot per epoch answers every round from the oldest kept epoch
    on exactly as the full history would, and holds at most `keep` entries."""
    timeline = MembershipTimeline(keep=keep)
    for epoch, index in enumerate(per_epoch):
        timeline.set(6 * epoch, table(index))
    assert len(timeline) <= keep
    oldest = timeline.entries()[0][0]
    for r in range(oldest, 6 * len(per_epoch) + 6):
        assert timeline.at(r) == table(per_epoch[min(r // 6, len(per_epoch) - 1)])
