"""Known answers: the beacon, seed derivation, keyed sampling and data assignment.

Every vector below was computed once from the rule and written down; the tests never derive an
expectation from the code they check. A vector changes only with a protocol version bump: a
different value here is a different network (miners would train on other seeds and data than
validators recompute).
"""

from __future__ import annotations

from protocol.assignment import assign_samples, random_samples
from protocol.randomness import (
    SEED_BITS,
    KeyedPermutation,
    contribution_seeds,
    derive_seed,
    keyed_hash,
    round_beacon,
    validator_sample_key,
    verification_sample,
)

NET = "kat-net"
MINER = bytes(range(100, 132))
# A fixed 32-byte beacon value (the round-7 beacon of the earlier, model-keyed derivation),
# kept as the input of the seed and assignment vectors below, which take any beacon.
BEACON = bytes.fromhex("acbf1c9e512df1b89d70e4b333435ebcf4054022d585c22f3e52a2d962a11d47")


def test_round_beacon() -> None:
    # Recorded when the beacon stopped depending on the previous certified model (a leader
    # could grind it through its choice of certificate; docs/architecture.md, "Round beacon"):
    # unkeyed BLAKE2b-256 of frame("kat-net") | frame(u64 round), person ss:round-beacon,
    # computed with plain hashlib, not with protocol.randomness.
    assert round_beacon(NET, 7).hex() == (
        "6814e31bbe08c7800acab2075c402fef6b1112ed832244a308e809098f5a2f8f")
    assert round_beacon(NET, 0).hex() == (
        "02d87a2db44e69d4af70d7e5d1b6cf8fa2f66236b09131c37975234df3978ec4")
    # the largest round index (u64 edge)
    assert round_beacon(NET, 2**64 - 1).hex() == (
        "169818bdb591735ee090cdd583616b1c604fab9d784ea515a30445d3d5329189")


def test_contribution_seeds() -> None:
    # the first four seeds of MINER in round 7 (person ss:seed, top bit dropped: 63 bits)
    assert contribution_seeds(NET, BEACON, MINER, 7, 4) == [
        2549082826062609630, 6795864469558500758, 5823195604019951176, 4504875660506546611]
    # the largest seed index (u64 edge)
    assert derive_seed(NET, BEACON, MINER, 7, 2**64 - 1) == 1571093440045821401
    assert SEED_BITS == 63


def test_keyed_hash() -> None:
    # BLAKE2b-256 keyed with b"k" * 16, person "ss:x", data "data"
    assert keyed_hash(b"k" * 16, b"ss:x", b"data").hex() == (
        "1a7fd41731cab02f88c22582ad3ba8255ca1852c1696a0ef06832a8aabe25f6e")


def test_validator_sample_key_and_sample() -> None:
    # a validator's private key for MINER's round 7 (person ss:verify-key)
    key = validator_sample_key(b"s" * 16, 7, MINER)
    assert key.hex() == "65867b086d0ad63ece705dcdb70a4b1b6e5bf80510428525b4a6866a38786927"
    # the 8 of 256 scalars it checks (person ss:verify-pick), sorted
    assert verification_sample(key, 256, 8) == [57, 74, 91, 93, 104, 179, 188, 224]
    # 3 of 5
    assert verification_sample(key, 5, 3) == [1, 2, 3]


def test_keyed_permutation() -> None:
    # Feistel (person ss:feistel, 6 rounds) with cycle walking, on ranges of several sizes
    perm = KeyedPermutation(b"k" * 16, 1000)
    assert [perm(i) for i in range(8)] == [100, 711, 390, 200, 10, 544, 996, 963]
    big = KeyedPermutation(b"\x01" * 64, 2**40)
    assert [big(i) for i in range(3)] == [386067658257, 399322869261, 180960398178]
    assert [KeyedPermutation(b"\x02" * 32, 2)(i) for i in range(2)] == [1, 0]
    assert [KeyedPermutation(b"\x02" * 32, 3)(i) for i in range(3)] == [2, 0, 1]


def test_assign_samples() -> None:
    # miners 0 and 3 of the round of BEACON, 8 samples each of 10,000 (person ss:assign)
    assert assign_samples(BEACON, 10_000, 0, 8) == [2192, 7159, 8534, 5528, 5470, 8512, 8785,
                                                    9058]
    assert assign_samples(BEACON, 10_000, 3, 8) == [3590, 4362, 8019, 4638, 8740, 7903, 3137,
                                                    2665]
    # one miner taking the whole task: the permutation itself
    assert assign_samples(BEACON, 10, 0, 10) == [9, 3, 1, 0, 8, 2, 6, 7, 4, 5]


def test_random_samples() -> None:
    # a validator's random evaluation data (person ss:random-data), 16- and 64-byte keys
    assert random_samples(b"v" * 16, 10_000, 8) == [422, 2760, 316, 3748, 1336, 9507, 8864, 7039]
    assert random_samples(b"w" * 64, 50, 5) == [0, 36, 11, 2, 5]
