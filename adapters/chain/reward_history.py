"""One account's rewards as the Incentives contract's events tell them, epoch by epoch.

A directly settled epoch emits MinerRewarded(epoch, slot, account, consensus, amount) for every
miner slot and ValidatorRewarded(epoch, validator, amount) for every validator that revealed;
the amounts are credited to `claimable`, and `claim()` mints all of it at once (Claimed). So a
credit is claimed exactly when a Claimed event of the same account follows it on the chain.
Merkle-settled epochs are paid by proof (MerkleClaimed), one epoch at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from eth_utils.address import to_checksum_address
from web3 import Web3

from adapters.chain.incentives_contract import IncentivesClient
from adapters.chain.retry import RetryPolicy, call_with_retries
from protocol.domain_types import EvmAddress, Wei
from protocol.settlement.params import Role

WEIGHT_SCALE = 0xFFFF
"""Incentives.WEIGHT_SCALE: a revealed or consensus weight of 1."""
BPS = 10_000
LOG_CHUNK_BLOCKS = 5_000
"""Blocks per eth_getLogs request (public endpoints cap the range of one request)."""


@dataclass(frozen=True)
class EpochReward:
    """What one settled epoch credited to the account."""

    epoch: int
    role: Role
    """MINER or VALIDATOR; NONE for a Merkle claim (the event does not say which)."""
    amount: Wei
    weight: float | None
    """Miners: the consensus weight of the slot (a fraction of the epoch's weight, 0..1);
    validators: the share of the validators' pool; None for a Merkle claim."""
    slot: int | None
    block: int
    log_index: int
    claimed: bool


@dataclass(frozen=True)
class RewardHistory:
    """Every reward of one account, oldest first, and what is left to claim."""

    account: EvmAddress
    rewards: tuple[EpochReward, ...]
    claimed_total: Wei
    """Sum of the account's Claimed and MerkleClaimed events."""
    claimable: Wei

    @property
    def total(self) -> Wei:
        return Wei(sum(r.amount for r in self.rewards))


def read_reward_history(
    w3: Web3, incentives: IncentivesClient, account: str, from_block: int = 0
) -> RewardHistory:
    """The reward events of `account` from `from_block` (the deployment block) to the head."""
    who = EvmAddress(to_checksum_address(account))
    head = int(_rpc(lambda: w3.eth.block_number))
    events = incentives.contract.events
    miner = _logs(events.MinerRewarded, {"account": who}, from_block, head)
    validator = _logs(events.ValidatorRewarded, {"validator": who}, from_block, head)
    claims = _logs(events.Claimed, {"account": who}, from_block, head)
    merkle = _logs(events.MerkleClaimed, {"account": who}, from_block, head)
    last_claim = max((_position(log) for log in claims), default=(-1, -1))
    pool = _validator_pool(incentives)
    rewards = [_miner_reward(log, last_claim) for log in miner]
    rewards += [_validator_reward(log, last_claim, pool) for log in validator]
    rewards += [EpochReward(int(log["args"]["epoch"]), Role.NONE, Wei(int(log["args"]["amount"])),
                            None, None, *_position(log), claimed=True) for log in merkle]
    rewards.sort(key=lambda r: (r.epoch, r.block, r.log_index))
    claimed = sum(int(log["args"]["amount"]) for log in (*claims, *merkle))
    return RewardHistory(who, tuple(rewards), Wei(claimed), incentives.claimable(who))


def _miner_reward(log: Any, last_claim: tuple[int, int]) -> EpochReward:
    args = log["args"]
    return EpochReward(
        epoch=int(args["epoch"]), role=Role.MINER, amount=Wei(int(args["amount"])),
        weight=int(args["consensus"]) / WEIGHT_SCALE, slot=int(args["slot"]),
        block=int(log["blockNumber"]), log_index=int(log["logIndex"]),
        claimed=_position(log) < last_claim,
    )


def _validator_reward(log: Any, last_claim: tuple[int, int], pool: int) -> EpochReward:
    amount = int(log["args"]["amount"])
    return EpochReward(
        epoch=int(log["args"]["epoch"]), role=Role.VALIDATOR, amount=Wei(amount),
        weight=amount / pool if pool else None, slot=None,
        block=int(log["blockNumber"]), log_index=int(log["logIndex"]),
        claimed=_position(log) < last_claim,
    )


def _validator_pool(incentives: IncentivesClient) -> int:
    econ = incentives.economic_params()
    return econ.emission_per_epoch - econ.emission_per_epoch * econ.miner_share_bps // BPS


def _position(log: Any) -> tuple[int, int]:
    return int(log["blockNumber"]), int(log["logIndex"])


def _logs(event: Any, filters: dict[str, str], start: int, head: int) -> list[Any]:
    out: list[Any] = []
    for low, high in _ranges(start, head):
        fetch = partial(event().get_logs, argument_filters=filters, from_block=low, to_block=high)
        out.extend(_rpc(fetch))
    return out


def _ranges(start: int, head: int) -> Iterator[tuple[int, int]]:
    low = max(start, 0)
    while low <= head:
        high = min(low + LOG_CHUNK_BLOCKS - 1, head)
        yield low, high
        low = high + 1


def _rpc(action: Callable[[], Any]) -> Any:
    return call_with_retries(action, RetryPolicy())


class RewardLedger:
    """Every miner reward and every claim of a network, read from the contract's events
    incrementally: each `refresh` reads only the blocks mined since the last one (the cache
    assumes a chain without reorganisations, as the Registry's does)."""

    def __init__(self, w3: Web3, incentives: IncentivesClient, from_block: int = 0) -> None:
        self._w3 = w3
        self._incentives = incentives
        self._next_block = max(0, from_block)
        self._credits: dict[EvmAddress, list[tuple[int, int, int, int, float]]] = {}
        """account -> (epoch, block, log index, amount, consensus weight), oldest first."""
        self._claims: dict[EvmAddress, list[tuple[int, int, int]]] = {}
        """account -> (block, log index, amount) of its Claimed events."""

    def refresh(self) -> None:
        """Read the events of the blocks mined since the last refresh."""
        head = int(_rpc(lambda: self._w3.eth.block_number))
        if head < self._next_block:
            return
        events = self._incentives.contract.events
        for log in _logs(events.MinerRewarded, {}, self._next_block, head):
            args = log["args"]
            who = EvmAddress(to_checksum_address(args["account"]))
            self._credits.setdefault(who, []).append(
                (int(args["epoch"]), *_position(log), int(args["amount"]),
                 int(args["consensus"]) / WEIGHT_SCALE))
        for log in _logs(events.Claimed, {}, self._next_block, head):
            who = EvmAddress(to_checksum_address(log["args"]["account"]))
            self._claims.setdefault(who, []).append((*_position(log),
                                                     int(log["args"]["amount"])))
        self._next_block = head + 1

    def settled_epochs(self) -> list[int]:
        """Epochs that paid any miner, in order."""
        return sorted({c[0] for credits in self._credits.values() for c in credits})

    def rewards(self, account: str) -> list[EpochReward]:
        """The miner rewards of `account`, oldest first, each marked claimed or not."""
        who = EvmAddress(to_checksum_address(account))
        last_claim = max(((b, i) for b, i, _ in self._claims.get(who, [])), default=(-1, -1))
        return [EpochReward(epoch, Role.MINER, Wei(amount), weight, None, block, index,
                            claimed=(block, index) < last_claim)
                for epoch, block, index, amount, weight in self._credits.get(who, [])]

    def claimed(self, account: str) -> Wei:
        """What `account` has claimed (minted) so far, every role's credits included."""
        who = EvmAddress(to_checksum_address(account))
        return Wei(sum(amount for _, _, amount in self._claims.get(who, [])))
