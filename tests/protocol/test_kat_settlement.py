"""Known answers: the settlement reference maths (stake-weighted median, rewards, Merkle
reward trees, weight vectors and commit digests), as the contracts compute them.

Validators pay out off-chain with these numbers and the contract checks them, so they must agree
to the unit. Computed once and written down.
"""

from __future__ import annotations

from protocol.settlement.median import SettlementResult, consensus_weight, settle_reference
from protocol.settlement.merkle import build_reward_tree, hash_pair, reward_leaf
from protocol.settlement.weight_vector import commit_digest, normalize_weights

A = "0x" + "11" * 20
B = "0x" + "22" * 20
C = "0x00000000000000000000000000000000000000aB"  # not checksummed on purpose
ROWS = [[30000, 20000, 15535], [10000, 50000, 5535], [65535], [20000, 20000, 25535]]
STAKES = [100, 300, 50, 550]


def test_consensus_weight() -> None:
    # the largest weight backed by more than kappa of the stake (strictly more)
    assert consensus_weight([100, 200, 300, 400], [10, 20, 30, 40]) == 300
    assert consensus_weight([100, 200, 300, 400], [10, 20, 30, 40], 7_000) == 200
    assert consensus_weight([5, 5], [1, 1]) == 5
    assert consensus_weight([0, 7], [1, 1]) == 0  # exactly half is not a majority
    assert consensus_weight([7, 3], [1, 1], 4_999) == 7


def test_settle_reference() -> None:
    # four validators, three miner slots (a short row is padded with zeros), 1e18 emitted.
    # Issue 15 changed the miner rule deliberately: the pool is split by the consensus weights,
    # renormalised (5e17 * 20000 // 65535 ...), and performance is the consensus weight; the
    # validator rule and its numbers are unchanged.
    assert settle_reference(ROWS, STAKES, 3, 10**18) == SettlementResult(
        consensus=(20000, 20000, 25535),
        miner_rewards=(152590218966964217, 152590218966964217, 194819562066071564),
        performance=(20000, 20000, 25535),
        validator_rewards=(52137462271103537, 100083085719113940, 9388216849032778,
                           338391235160749742),
    )
    # a fourth, empty slot; 30 % to miners; kappa 60 %; an emission that does not divide
    assert settle_reference(ROWS, STAKES, 4, 999_999, miner_share_bps=3_000,
                            kappa_bps=6_000) == SettlementResult(
        consensus=(20000, 20000, 15535, 0),
        miner_rewards=(108039, 108039, 83919, 0),  # 299999 * c // 55535
        performance=(20000, 20000, 15535, 0),
        validator_rewards=(81398, 156252, 14657, 447691),
    )


def test_reward_leaf_and_pair() -> None:
    # keccak(keccak(abi.encode(epoch, account, amount))); pairs hashed sorted
    assert reward_leaf(3, A, 10**18).hex() == (
        "e2f31b9674af2c8376557d94841497b95303f64484369b4d42290b9e601d0b11")
    assert hash_pair(b"\x01" * 32, b"\x02" * 32).hex() == (
        "346d8c96a2454213fcc0daff3c96ad0398148181b9fa6488f7ae2c0af5b20aa0")
    assert hash_pair(b"\x02" * 32, b"\x01" * 32).hex() == (
        "346d8c96a2454213fcc0daff3c96ad0398148181b9fa6488f7ae2c0af5b20aa0")


def test_reward_tree() -> None:
    # three leaves (one odd node carried up), epoch 3; proofs of A and C
    tree = build_reward_tree(3, {A: 10**18, B: 5, C: 0})
    assert tree.root.hex() == "4b6044dfa88df74d96f85fe506d0183955fdbe94c35ec1acf9aadd5a67a15309"
    assert tree.total == 10**18 + 5
    assert [p.hex() for p in tree.proof(A)] == [
        "f0b75f459f7845a992de7a7663bdd877456ad7afdd8620256c71821331b18d69"]
    assert [p.hex() for p in tree.proof(C)] == [
        "ae01b2e48cb9d141ed48d9eda594d63e63839b6e2e006f9e675ef61ea9ee430f",
        "e2f31b9674af2c8376557d94841497b95303f64484369b4d42290b9e601d0b11"]
    # a single leaf is its own root
    assert build_reward_tree(9, {B: 1}).root.hex() == (
        "06299c9ecf4d8a283ce88920941ea7a2931f93075b0b1bf5cfbf7de19045649c")


def test_normalize_weights() -> None:
    # largest remainder on exact fractions, ties to the lower index, negatives as zero
    assert normalize_weights([3.0, 1.0, 0.0, -2.0, 2.0]) == (32768, 10922, 0, 0, 21845)
    assert normalize_weights([1.0, 1.0, 1.0]) == (21845, 21845, 21845)
    assert normalize_weights([0.1, 0.2, 0.3], 1000) == (167, 333, 500)


def test_commit_digest() -> None:
    # keccak(abi.encode(epoch, validator, uint16[] weights, bytes32 salt))
    assert commit_digest(4, A, [65535, 0], b"\x07" * 32).hex() == (
        "eab18fbd6e06f30505af8678bea83a0903de587a5e591370164b519f68a7a6c8")
