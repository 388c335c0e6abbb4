"""Beacon, seed derivation and keyed sampling."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from protocol.errors import SeedswarmError
from protocol.randomness import (
    KeyedPermutation,
    RandomnessError,
    contribution_seeds,
    derive_seed,
    round_beacon,
    validator_sample_key,
    verification_sample,
)

NET = "testnet-1"
MINER_A = b"\xaa" * 32
MINER_B = b"\xbb" * 32


def _frame(*parts: bytes) -> bytes:
    return b"".join(struct.pack("<Q", len(p)) + p for p in parts)


def test_beacon_matches_documented_construction() -> None:
    expected = hashlib.blake2b(
        _frame(NET.encode(), struct.pack("<Q", 7)), digest_size=32, person=b"ss:round-beacon"
    ).digest()
    assert round_beacon(NET, 7) == expected


def test_seed_matches_documented_construction() -> None:
    beacon = round_beacon(NET, 7)
    data = _frame(NET.encode(), MINER_A, struct.pack("<Q", 7), struct.pack("<Q", 3))
    digest = hashlib.blake2b(data, digest_size=8, key=beacon, person=b"ss:seed").digest()
    assert derive_seed(NET, beacon, MINER_A, 7, 3) == int.from_bytes(digest, "little") >> 1


def test_known_answers_are_stable() -> None:
    # Pinned values: changing them forks every network that exists.
    beacon = round_beacon(NET, 7)
    assert beacon.hex()[:16] == KNOWN_BEACON_PREFIX
    assert contribution_seeds(NET, beacon, MINER_A, 7, 3) == KNOWN_SEEDS


def test_beacon_depends_on_every_input() -> None:
    base = round_beacon(NET, 7)
    assert round_beacon("other", 7) != base
    assert round_beacon(NET, 8) != base
    assert len(base) == 32


def test_seeds_depend_on_every_input_and_are_in_range() -> None:
    beacon = round_beacon(NET, 7)
    other_beacon = round_beacon(NET, 8)
    variants = {
        derive_seed(NET, beacon, MINER_A, 7, 0),
        derive_seed("other", beacon, MINER_A, 7, 0),
        derive_seed(NET, other_beacon, MINER_A, 7, 0),
        derive_seed(NET, beacon, MINER_B, 7, 0),
        derive_seed(NET, beacon, MINER_A, 8, 0),
        derive_seed(NET, beacon, MINER_A, 7, 1),
    }
    assert len(variants) == 6
    seeds = contribution_seeds(NET, beacon, MINER_A, 7, 2000)
    assert len(set(seeds)) == 2000
    assert all(0 <= s < 2**63 for s in seeds)
    # The top bit of the 63 is set about half the time: the full range is used.
    high = sum(s >> 62 for s in seeds)
    assert 900 < high < 1100


def test_bad_inputs_are_rejected() -> None:
    beacon = round_beacon(NET, 7)
    with pytest.raises(RandomnessError):
        round_beacon(NET, -1)
    with pytest.raises(RandomnessError):
        derive_seed(NET, beacon, b"\x01" * 31, 7, 0)
    with pytest.raises(RandomnessError):
        derive_seed(NET, beacon, MINER_A, -1, 0)
    with pytest.raises(RandomnessError):
        contribution_seeds(NET, beacon, MINER_A, 7, -1)
    with pytest.raises(RandomnessError):
        validator_sample_key(b"short", 7, MINER_A)
    assert issubclass(RandomnessError, SeedswarmError)


def test_validator_sample_key_is_secret_dependent() -> None:
    k1 = validator_sample_key(b"s" * 32, 7, MINER_A)
    assert k1 == validator_sample_key(b"s" * 32, 7, MINER_A)
    assert k1 != validator_sample_key(b"t" * 32, 7, MINER_A)
    assert k1 != validator_sample_key(b"s" * 32, 8, MINER_A)
    assert k1 != validator_sample_key(b"s" * 32, 7, MINER_B)


def test_verification_sample_properties() -> None:
    key = validator_sample_key(b"s" * 32, 7, MINER_A)
    pick = verification_sample(key, 256, 16)
    assert pick == sorted(set(pick)) and len(pick) == 16
    assert all(0 <= i < 256 for i in pick)
    assert pick == verification_sample(key, 256, 16)
    assert pick != verification_sample(validator_sample_key(b"t" * 32, 7, MINER_A), 256, 16)
    assert verification_sample(key, 5, 16) == [0, 1, 2, 3, 4]
    assert verification_sample(key, 0, 3) == []


def test_verification_sample_is_roughly_uniform() -> None:
    counts: Counter[int] = Counter()
    trials = 2000
    for t in range(trials):
        key = validator_sample_key(b"s" * 32, t, MINER_A)
        counts.update(verification_sample(key, 20, 2))
    expected = trials * 2 / 20  # 200 per index, binomial sd ~13.4
    assert len(counts) == 20
    assert all(abs(c - expected) < 6 * 13.4 for c in counts.values())


@pytest.mark.parametrize("size", [*range(0, 70), 255, 256, 257, 1000])
def test_keyed_permutation_is_a_bijection(size: int) -> None:
    perm = KeyedPermutation(b"k" * 32, size)
    assert sorted(perm(i) for i in range(size)) == list(range(size))


def test_keyed_permutation_depends_on_key() -> None:
    a = [KeyedPermutation(b"a" * 32, 1000)(i) for i in range(50)]
    b = [KeyedPermutation(b"b" * 32, 1000)(i) for i in range(50)]
    assert a != b
    assert a != list(range(50))
    with pytest.raises(RandomnessError):
        KeyedPermutation(b"a" * 32, 10)(10)


def test_same_results_in_a_fresh_process() -> None:
    # A different PYTHONHASHSEED proves nothing depends on Python's salted hash().
    code = (
        "from protocol.randomness import round_beacon, contribution_seeds, verification_sample;"
        f"b = round_beacon({NET!r}, 7);"
        f"print(contribution_seeds({NET!r}, b, b'\\xaa' * 32, 7, 4), verification_sample(b, 99, 5))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
        cwd=str(Path(__file__).resolve().parents[2]),
    ).stdout.strip()
    beacon = round_beacon(NET, 7)
    here = f"{contribution_seeds(NET, beacon, MINER_A, 7, 4)} {verification_sample(beacon, 99, 5)}"
    assert out == here


# Recorded with plain hashlib when the beacon stopped depending on the previous model.
KNOWN_BEACON_PREFIX = "ca168b195870926f"
KNOWN_SEEDS = [8810195542795391717, 6284263088211856544, 1008121641750180428]


@pytest.mark.parametrize("bad", [True, -1, 1.5, "3"])
def test_counts_and_indices_are_integers(bad: object) -> None:
    beacon = round_beacon(NET, 7)
    key = validator_sample_key(b"s" * 32, 7, MINER_A)
    perm = KeyedPermutation(b"k" * 32, 10)
    for call in (
        lambda: contribution_seeds(NET, beacon, MINER_A, 7, bad),  # type: ignore[arg-type]
        lambda: verification_sample(key, bad, 3),  # type: ignore[arg-type]
        lambda: verification_sample(key, 10, bad),  # type: ignore[arg-type]
        lambda: perm(bad),  # type: ignore[arg-type]
    ):
        with pytest.raises(RandomnessError):
            call()


def test_edges_of_the_u64_inputs() -> None:
    beacon = round_beacon(NET, 2**64 - 1)
    assert 0 <= derive_seed(NET, beacon, MINER_A, 2**64 - 1, 2**64 - 1) < 2**63
    for bad in (2**64, -1, True):
        with pytest.raises(RandomnessError):
            round_beacon(NET, bad)
        with pytest.raises(RandomnessError):
            derive_seed(NET, beacon, MINER_A, 7, bad)
    perm = KeyedPermutation(b"k" * 32, 2**64 - 1)
    assert 0 <= perm(2**64 - 2) < 2**64 - 1
    with pytest.raises(RandomnessError):
        perm(2**64 - 1)
    with pytest.raises(RandomnessError):
        KeyedPermutation(b"k" * 32, 2**64)


@pytest.mark.parametrize("key", [b"k" * 15, b"k" * 65, "k" * 32])
def test_sample_keys_are_16_to_64_bytes(key: bytes) -> None:
    with pytest.raises(RandomnessError):
        verification_sample(key, 10, 2)
    with pytest.raises(RandomnessError):
        KeyedPermutation(key, 10)
    assert len(verification_sample(b"k" * 16, 10, 2)) == len(verification_sample(b"k" * 64, 10, 2))


def test_errors_name_the_offending_input() -> None:
    beacon = round_beacon(NET, 7)
    cases = [
        (lambda: round_beacon(NET, -1), "round_index"),
        (lambda: derive_seed(NET, b"short", MINER_A, 7, 0), "beacon"),
        (lambda: derive_seed(NET, beacon, b"short", 7, 0), "miner"),
        (lambda: derive_seed(NET, beacon, MINER_A, -1, 0), "round_index"),
        (lambda: derive_seed(NET, beacon, MINER_A, 7, -1), "index"),
        (lambda: contribution_seeds(NET, beacon, MINER_A, 7, -1), "count"),
        (lambda: validator_sample_key(b"s" * 32, -1, MINER_A), "round_index"),
        (lambda: validator_sample_key(b"s" * 32, 7, b"short"), "miner"),
        (lambda: validator_sample_key(b"short", 7, MINER_A), "secret"),
        (lambda: verification_sample(b"k" * 32, True, 1), "count"),
        (lambda: verification_sample(b"k" * 32, 5, -1), "^k must"),
        (lambda: verification_sample(b"short", 5, 1), "^key must"),
        (lambda: KeyedPermutation(b"short", 5), "^key must"),
        (lambda: KeyedPermutation(b"k" * 32, -1), "^size must"),
    ]
    for call, name in cases:
        with pytest.raises(RandomnessError, match=name):
            call()


def test_permutations_of_zero_and_one_element() -> None:
    assert [KeyedPermutation(b"k" * 32, 1)(0)] == [0]
    with pytest.raises(RandomnessError):
        KeyedPermutation(b"k" * 32, 0)(0)
