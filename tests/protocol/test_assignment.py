"""Deterministic, disjoint data assignment."""

from __future__ import annotations

from collections import Counter

import pytest

from protocol.assignment import assign_samples, random_samples
from protocol.errors import ConfigError
from protocol.randomness import round_beacon

BEACON = round_beacon("testnet-1", 3)


def test_disjoint_within_range_and_deterministic() -> None:
    n, per = 10_000, 64
    sets = [assign_samples(BEACON, n, m, per) for m in range(40)]
    flat = [i for s in sets for i in s]
    assert len(flat) == len(set(flat)) == 40 * per
    assert all(0 <= i < n for i in flat)
    assert sets[7] == assign_samples(BEACON, n, 7, per)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 16, 31, 100])
def test_miners_together_cover_a_permutation(n: int) -> None:
    covered = [i for m in range(n) for i in assign_samples(BEACON, n, m, 1)]
    assert sorted(covered) == list(range(n))


def test_depends_on_beacon_and_is_shuffled() -> None:
    other = round_beacon("testnet-1", 4)
    a = assign_samples(BEACON, 1000, 0, 50)
    assert a != assign_samples(other, 1000, 0, 50)
    assert a != sorted(a)


def test_position_zero_is_roughly_uniform() -> None:
    counts: Counter[int] = Counter()
    for r in range(2000):
        counts[assign_samples(round_beacon("n", r), 10, 0, 1)[0]] += 1
    assert len(counts) == 10
    assert all(abs(c - 200) < 6 * 13.5 for c in counts.values())  # binomial sd ~13.4


def test_too_many_miners_is_a_config_error() -> None:
    assign_samples(BEACON, 100, 9, 10)
    with pytest.raises(ConfigError):
        assign_samples(BEACON, 100, 10, 10)
    with pytest.raises(ConfigError):
        assign_samples(BEACON, 100, -1, 10)
    with pytest.raises(ConfigError):
        assign_samples(b"short", 100, 0, 10)


def test_random_samples() -> None:
    key = b"v" * 32
    picks = random_samples(key, 500, 100)
    assert len(set(picks)) == 100 and all(0 <= i < 500 for i in picks)
    assert picks == random_samples(key, 500, 100)
    assert picks != random_samples(b"w" * 32, 500, 100)
    assert sorted(random_samples(key, 20, 20)) == list(range(20))
    with pytest.raises(ConfigError):
        random_samples(key, 5, 6)


@pytest.mark.parametrize("key", ["v" * 32, bytearray(b"v" * 15), b"v" * 65, None])
def test_random_samples_refuse_a_bad_key_with_config_error(key: object) -> None:
    with pytest.raises(ConfigError):
        random_samples(key, 500, 10)  # type: ignore[arg-type]


def test_random_samples_key_lengths_at_the_edges() -> None:
    assert len(random_samples(b"v" * 16, 500, 10)) == len(random_samples(b"v" * 64, 500, 10)) == 10


@pytest.mark.parametrize("beacon", ["b" * 32, b"b" * 31, b"b" * 33, None])
def test_assign_samples_refuses_a_bad_beacon_with_config_error(beacon: object) -> None:
    with pytest.raises(ConfigError):
        assign_samples(beacon, 100, 0, 10)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [True, 1.0, -1])
def test_counts_are_non_negative_integers(bad: object) -> None:
    for call in (
        lambda: assign_samples(BEACON, bad, 0, 1),  # type: ignore[arg-type]
        lambda: assign_samples(BEACON, 100, bad, 1),  # type: ignore[arg-type]
        lambda: assign_samples(BEACON, 100, 0, bad),  # type: ignore[arg-type]
        lambda: random_samples(b"v" * 32, bad, 1),  # type: ignore[arg-type]
        lambda: random_samples(b"v" * 32, 100, bad),  # type: ignore[arg-type]
    ):
        with pytest.raises(ConfigError):
            call()


def test_capacities_reached_exactly() -> None:
    # the last miner that fits takes the last positions; a draw of every sample is allowed
    last = assign_samples(BEACON, 100, 9, 10)
    together = [i for m in range(10) for i in assign_samples(BEACON, 100, m, 10)]
    assert sorted(together) == list(range(100)) and together[-10:] == last
    assert assign_samples(BEACON, 100, 0, 0) == [] and assign_samples(BEACON, 0, 0, 0) == []
    assert random_samples(b"v" * 32, 0, 0) == []
    assert sorted(random_samples(b"v" * 32, 7, 7)) == list(range(7))
