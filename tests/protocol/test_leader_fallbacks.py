"""Leader election: stake-weighted, deterministic, fallbacks drawn without replacement."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import ConsensusError
from protocol.leader import LEADER_ATTEMPTS, elected_leaders, leader_sequence, select_leader
from protocol.randomness import keyed_hash


def _key(i: int) -> bytes:
    return hashlib.sha256(b"validator %d" % i).digest()


def _beacon(i: int) -> bytes:
    return hashlib.sha256(b"beacon %d" % i).digest()


tables = st.lists(st.integers(min_value=1, max_value=1000), min_size=1, max_size=12).map(
    lambda stakes: [(_key(i), s) for i, s in enumerate(stakes)]
)


@settings(max_examples=60, deadline=None)
@given(tables, st.integers(min_value=0, max_value=10_000))
def test_fallbacks_name_distinct_validators_then_cycle(
    table: list[tuple[bytes, int]], seed: int
) -> None:
    beacon = _beacon(seed)
    n = len(table)
    sequence = [select_leader(beacon, table, k) for k in range(max(2 * n, LEADER_ATTEMPTS) + 3)]
    assert len(set(sequence[:n])) == n  # every validator once before any repeats
    assert all(sequence[k] == sequence[k % n] for k in range(n, len(sequence)))
    assert sequence[:LEADER_ATTEMPTS] == leader_sequence(beacon, table, LEADER_ATTEMPTS)
    assert len(elected_leaders(beacon, table)) == min(LEADER_ATTEMPTS, n)
    # the input order of the stake table does not matter
    assert leader_sequence(beacon, list(reversed(table)), n) == sequence[:n]


def test_a_dominant_silent_validator_leads_at_most_one_attempt() -> None:
    whale = _key(0)
    table = [(whale, 200), (_key(1), 25), (_key(2), 25), (_key(3), 25), (_key(4), 25)]
    for i in range(500):
        leaders = leader_sequence(_beacon(i), table, LEADER_ATTEMPTS)
        assert leaders.count(whale) <= 2  # 5 validators: attempts 5..7 repeat 0..2
        assert len(set(leaders[:5])) == 5
        # before: the same whale won all 8 attempts with probability (2/3)**8 ~ 4 %


def test_the_first_attempt_is_the_plain_stake_weighted_draw() -> None:
    table = sorted((_key(i), s) for i, s in enumerate((1, 2, 5, 0, 3)) if s > 0)
    total = sum(s for _, s in table)
    for i in range(200):
        beacon = _beacon(i)
        point = int.from_bytes(
            keyed_hash(beacon, b"ss:leader", struct.pack("<Q", 0), size=32), "little") % total
        for key, stake in table:
            if point < stake:
                expected = key
                break
            point -= stake
        assert select_leader(beacon, table, 0) == expected


def test_leaders_are_drawn_in_proportion_to_stake() -> None:
    stakes = (1, 2, 5)
    table = [(_key(i), s) for i, s in enumerate(stakes)]
    draws = 4000
    first = [select_leader(_beacon(i), table, 0) for i in range(draws)]
    for (key, stake) in table:
        share = first.count(key) / draws
        assert abs(share - stake / sum(stakes)) < 0.03, (stake, share)
    # second attempt: drawn among the other two, in proportion to their stakes
    heavy = _key(2)
    second = [select_leader(_beacon(i), table, 1)
              for i in range(draws) if first[i] == heavy]
    share_light = second.count(_key(0)) / len(second)
    assert abs(share_light - 1 / 3) < 0.04
    assert heavy not in second


def test_zero_stake_never_leads_and_bad_input_is_refused() -> None:
    table = [(_key(0), 0), (_key(1), 3), (_key(2), 1)]
    assert _key(0) not in elected_leaders(_beacon(1), table)
    assert len(elected_leaders(_beacon(1), table)) == 2
    with pytest.raises(ConsensusError):
        select_leader(_beacon(1), [(_key(0), 0)])
    with pytest.raises(ConsensusError):
        select_leader(_beacon(1), table, -1)
    with pytest.raises(ConsensusError):
        select_leader(b"short", table)
    with pytest.raises(ConsensusError):
        select_leader(_beacon(1), [(_key(1), 1), (_key(1), 2)])


@pytest.mark.parametrize("bad", [True, 1.0, -1, "2"])
def test_attempts_and_counts_are_integers(bad: object) -> None:
    table = [(_key(1), 3), (_key(2), 1)]
    with pytest.raises(ConsensusError):
        select_leader(_beacon(1), table, bad)  # type: ignore[arg-type]
    with pytest.raises(ConsensusError):
        leader_sequence(_beacon(1), table, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("beacon", ["b" * 32, None, b"b" * 33])
def test_a_beacon_is_32_bytes(beacon: object) -> None:
    with pytest.raises(ConsensusError):
        leader_sequence(beacon, [(_key(1), 3)], 1)  # type: ignore[arg-type]


def test_one_validator_leads_every_attempt() -> None:
    assert leader_sequence(_beacon(3), [(_key(1), 1)], 3) == [_key(1)] * 3
    assert leader_sequence(_beacon(3), [(_key(1), 1)], 0) == []
