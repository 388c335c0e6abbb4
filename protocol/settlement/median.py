"""Reference implementation of the contract's settlement arithmetic (integer-exact).

Used to test the contract, and by validators to compute Merkle-path payouts off-chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from protocol.settlement.params import BPS


def consensus_weight(weights: Sequence[int], stakes: Sequence[int], kappa_bps: int = 5_000) -> int:
    """Largest weight c such that validators giving >= c hold more than kappa of the stake."""
    if len(weights) != len(stakes):
        raise ValueError("weights and stakes differ in length")
    threshold = sum(stakes) * kappa_bps
    best = 0
    for candidate in set(weights):
        support = sum(s for w, s in zip(weights, stakes, strict=True) if w >= candidate)
        if support * BPS > threshold:
            best = max(best, candidate)
    return best


@dataclass(frozen=True)
class SettlementResult:
    """Per-miner consensus, reward and performance; per-validator reward.

    `performance` is what the contract records for eviction: the consensus weight itself.
    """

    consensus: tuple[int, ...]
    miner_rewards: tuple[int, ...]
    performance: tuple[int, ...]
    validator_rewards: tuple[int, ...]


def settle_reference(
    rows: Sequence[Sequence[int]],
    stakes: Sequence[int],
    miner_count: int,
    emission: int,
    miner_share_bps: int = 5_000,
    kappa_bps: int = 5_000,
) -> SettlementResult:
    """What Incentives.settle credits, given the revealed rows of a quorate epoch.

    Miners share the miner pool in proportion to their consensus weights (renormalised over
    the slots; nothing if every consensus weight is 0); validators share the rest by stake
    times the part of their weight that the consensus did not clip. Rows shorter than
    `miner_count` are padded with zeros, as the contract reads them. Every slot is treated as
    occupied.
    """
    padded = [list(r) + [0] * (miner_count - len(r)) for r in rows]
    miner_pool = emission * miner_share_bps // BPS
    clipped_sums = [0] * len(rows)
    consensus: list[int] = []
    for j in range(miner_count):
        column = [row[j] for row in padded]
        c = consensus_weight(column, stakes, kappa_bps)
        for i, w in enumerate(column):
            clipped_sums[i] += min(w, c)
        consensus.append(c)
    total = sum(consensus)
    rewards = tuple(miner_pool * c // total if total else 0 for c in consensus)
    pool = emission - miner_pool
    denominator = sum(s * t for s, t in zip(stakes, clipped_sums, strict=True))
    validator_rewards = tuple(
        pool * s * t // denominator if denominator else 0
        for s, t in zip(stakes, clipped_sums, strict=True)
    )
    return SettlementResult(tuple(consensus), rewards, tuple(consensus), validator_rewards)
