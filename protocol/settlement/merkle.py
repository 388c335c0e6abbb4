"""Merkle trees over (epoch, account, amount) reward leaves, as Incentives.claimMerkle checks.

Leaves are keccak256(keccak256(abi.encode(epoch, account, amount))); inner nodes hash the sorted
pair (OpenZeppelin's commutative MerkleProof); an odd node is carried up unchanged. Leaves are
sorted by hash, so the root depends only on the set of rewards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_canonical_address, to_checksum_address
from eth_utils.crypto import keccak

from protocol.domain_types import EvmAddress, Wei
from protocol.errors import SettlementError


def reward_leaf(epoch: int, account: str, amount: int) -> bytes:
    """The leaf hash of one reward, as Incentives.merkleLeaf."""
    inner = keccak(
        abi_encode(
            ["uint256", "address", "uint256"], [epoch, to_canonical_address(account), amount]
        )
    )
    return keccak(inner)


def hash_pair(a: bytes, b: bytes) -> bytes:
    """Commutative node hash."""
    return keccak(a + b) if a < b else keccak(b + a)


def process_proof(leaf: bytes, proof: list[bytes]) -> bytes:
    """The root a proof leads to (for checking proofs off-chain)."""
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node


@dataclass(frozen=True)
class RewardTree:
    """A built tree: its root, the rewards it pays, and proofs for them."""

    epoch: int
    rewards: tuple[tuple[EvmAddress, Wei], ...]
    levels: tuple[tuple[bytes, ...], ...]

    @property
    def root(self) -> bytes:
        """The root validators vote for."""
        return self.levels[-1][0]

    @property
    def total(self) -> Wei:
        """Sum of all amounts (voted together with the root)."""
        return Wei(sum(amount for _, amount in self.rewards))

    def amount_of(self, account: str) -> Wei:
        """The amount paid to `account` (0 if absent)."""
        wanted = EvmAddress(to_checksum_address(account))
        return next((a for acc, a in self.rewards if acc == wanted), Wei(0))

    def proof(self, account: str) -> list[bytes]:
        """Sibling hashes from `account`'s leaf up to the root."""
        leaf = reward_leaf(self.epoch, account, self.amount_of(account))
        try:
            index = self.levels[0].index(leaf)
        except ValueError as exc:
            raise SettlementError(f"{account} has no leaf in this tree") from exc
        proof: list[bytes] = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            index //= 2
        return proof


def build_reward_tree(epoch: int, rewards: Mapping[str, int]) -> RewardTree:
    """Builds the tree paying `rewards` (account -> amount) for `epoch`."""
    if not rewards:
        raise SettlementError("a reward tree needs at least one leaf")
    items = tuple(
        sorted((EvmAddress(to_checksum_address(a)), Wei(int(v))) for a, v in rewards.items())
    )
    level = tuple(sorted(reward_leaf(epoch, a, v) for a, v in items))
    levels = [level]
    while len(level) > 1:
        paired = [hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = tuple(paired)
        levels.append(level)
    return RewardTree(epoch, items, tuple(levels))
