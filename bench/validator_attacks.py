"""What a minority validator can do to miners' pay, through the settlement the chain runs.

    python -m bench.incentives --validator-attacks-only [--json PATH]

Each trial is one epoch on a fresh in-memory chain (`adapters.chain.memory_chain`, the Registry
and Incentives rules the contracts are tested against): validators staking 40, 35 and 25, four
honest miners and the attacker's favourite (a miner that contributes nothing, so honest
validators give it 0). Honest validators score the honest miners with their own noise around a
common truth; the attacker is the 40 % validator. Each attack is paired with the same epoch in
which the attacker scores honestly (same noise), and reported over `TRIALS` such pairs:

* late-evicting validator: the attacker votes everything on its favourite, then after the
  epoch has ended (before settlement) an ally registers a larger validator stake that evicts
  the 25 % validator (modelled as its deregistration: the same change to the registry's
  history). Were the set at settlement time to decide, the attacker's 40 of 75 would carry
  the vote alone.
* burning validator: the attacker gives all its weight to its favourite and none to the honest
  miners; were clipped weight left unminted, it would burn about its stake share of every
  honest miner's pay.
* lifting validator: the attacker puts all its weight on one honest miner (an ally), voting the
  other three down.

Reported per attack: the favourite's share of the miner pool and its gain over the paired
honest epoch (the favourite of the lifting attack is the ally), the other honest miners' loss
of pay (1 - their pay attacked / their pay in the paired honest epoch, all together and the
worst-hit one) and the attacker validator's own reward relative to honest voting.
Goal: honest miners lose at most 1 % of their pay to any minority validator.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.chain.memory_chain import MemoryChain
from protocol.domain_types import ModelHash, Wei
from protocol.settlement.params import EconomicParams, NetworkParams
from protocol.settlement.weight_vector import commit_digest, normalize_weights

ETH = 10**18
STAKES = (40 * ETH, 35 * ETH, 25 * ETH)  # validator 0 attacks
HONEST_MINERS = 4
FAVOURITE = HONEST_MINERS  # the attacker's own miner: the last slot
TRIALS = 50
NOISE = 0.05
"""Honest validators' relative disagreement on each miner's score (uniform +-)."""
GOAL_HONEST_LOSS = 0.01
SALT = bytes(range(32))
GENESIS = 1_700_000_000


@dataclass
class _Clock:
    now: float

    def __call__(self) -> float:
        return self.now


def _address(label: str) -> str:
    import hashlib

    from eth_utils.address import to_checksum_address

    return to_checksum_address(hashlib.sha256(label.encode()).digest()[:20])


def _key(kind: int, index: int) -> bytes:
    return bytes([kind]) + index.to_bytes(4, "big") + bytes(27)


VALIDATORS = [_address(f"validator-{i}") for i in range(len(STAKES))]
MINERS = [_address(f"miner-{i}") for i in range(HONEST_MINERS + 1)]


def _chain() -> tuple[MemoryChain, _Clock]:
    network = NetworkParams(
        genesis_time=GENESIS, round_length=10, epoch_length=6, genesis_model_hash=ModelHash(
            bytes(32)), min_miner_stake=Wei(ETH), min_validator_stake=Wei(ETH),
        unbonding_delay=3_600, max_miners=8, max_validators=8, immunity_epochs=1)
    economics = EconomicParams(Wei(1_000 * ETH), commit_window=20, reveal_window=20)
    clock = _Clock(float(GENESIS))
    chain = MemoryChain(network, economics, clock)
    for i, (who, stake) in enumerate(zip(VALIDATORS, STAKES, strict=True)):
        chain.register_validator(who, _key(1, i), stake)
    for i, who in enumerate(MINERS):
        chain.register_miner(who, _key(2, i), ETH)
    return chain, clock


def _epoch(rows: Sequence[tuple[int, ...]], after_reveal: Callable[[MemoryChain], None] | None
           ) -> list[int]:
    """One settled epoch 0; returns what every miner, then every validator, was credited."""
    chain, clock = _chain()
    windows = chain.windows(0)
    clock.now = windows.commit_opens
    for who, row in zip(VALIDATORS, rows, strict=True):
        chain.commit_weights(who, 0, commit_digest(0, who, row, SALT))
    clock.now = windows.reveal_opens
    for who, row in zip(VALIDATORS, rows, strict=True):
        chain.reveal_weights(who, 0, row, SALT)
    clock.now = windows.settle_opens
    if after_reveal is not None:
        after_reveal(chain)
    chain.settle(0)
    return [chain.claimable(a) for a in MINERS + VALIDATORS]


def _late_eviction(chain: MemoryChain) -> None:
    chain.register_validator(_address("ally"), _key(7, 0), 50 * ETH)
    chain.deregister(VALIDATORS[2])  # the eviction's effect on the registry's history


def _honest_row(truth: Sequence[float], rng: random.Random, noise: float) -> tuple[int, ...]:
    return normalize_weights([t * rng.uniform(1 - noise, 1 + noise) for t in truth] + [0.0])


ALLY = 0
"""The honest miner the lifting validator favours."""

ATTACKS: dict[str, tuple[Callable[[tuple[int, ...]], tuple[int, ...]],
                         Callable[[MemoryChain], None] | None, int]] = {
    "late-evicting validator": (lambda _: normalize_weights([0] * HONEST_MINERS + [1]),
                                _late_eviction, FAVOURITE),
    "burning validator": (lambda _: normalize_weights([0] * HONEST_MINERS + [1]), None,
                          FAVOURITE),
    "lifting validator": (lambda _: normalize_weights([1] + [0] * HONEST_MINERS), None, ALLY),
}


def measure(trials: int = TRIALS, seed: int = 0, noise: float = NOISE) -> dict[str, Any]:
    """Per attack: favourite's share of the miner pool, honest miners' loss of pay (all
    victims together, and the worst-hit one), the attacker validator's reward relative to
    voting honestly (sums over `trials` paired epochs)."""
    rng = random.Random(seed)
    out: dict[str, Any] = {}
    sums = {name: [0, 0, 0, 0, 0, 0, 0, 0] for name in ATTACKS}
    per_miner = {name: [[0, 0] for _ in range(HONEST_MINERS)] for name in ATTACKS}
    for _ in range(trials):
        truth = [rng.uniform(0.5, 2.0) for _ in range(HONEST_MINERS)]
        rows = [_honest_row(truth, rng, noise) for _ in STAKES]
        for name, (attack, after, favourite) in ATTACKS.items():
            fair = _epoch(rows, after)
            hit = _epoch([attack(rows[0]), *rows[1:]], after)
            victims = [v for v in range(HONEST_MINERS) if v != favourite]
            s = sums[name]
            s[0] += hit[favourite]
            s[1] += sum(hit[:HONEST_MINERS + 1])
            s[6] += fair[favourite]
            s[7] += sum(fair[:HONEST_MINERS + 1])
            s[2] += sum(fair[v] for v in victims)
            s[3] += sum(hit[v] for v in victims)
            s[4] += fair[HONEST_MINERS + 1]
            s[5] += hit[HONEST_MINERS + 1]
            for v in victims:
                per_miner[name][v][0] += fair[v]
                per_miner[name][v][1] += hit[v]
    for name, (fav, pool, fair_pay, hit_pay, fair_own, hit_own, fav_fair, pool_fair
               ) in sums.items():
        loss = 1 - hit_pay / fair_pay if fair_pay else 0.0
        worst = max((1 - h / f for f, h in per_miner[name] if f), default=0.0)
        gain = (fav / pool if pool else 0.0) - (fav_fair / pool_fair if pool_fair else 0.0)
        out[name] = {"favourite_share": fav / pool if pool else 0.0,
                     "favourite_gain": max(0.0, gain),
                     "honest_pay_loss": max(0.0, loss),
                     "worst_honest_miner_loss": max(0.0, worst), "honest_noise": noise,
                     "attacker_validator_reward_ratio": hit_own / fair_own if fair_own else 0.0,
                     "trials": trials, "attacker_stake_share": STAKES[0] / sum(STAKES)}
    return out


def met(result: dict[str, Any]) -> bool:
    """Honest miners lose at most GOAL_HONEST_LOSS to each attack, favourites earn nothing."""
    return all(r["honest_pay_loss"] <= GOAL_HONEST_LOSS and r["favourite_gain"] <= 0.01
               for r in result.values())
