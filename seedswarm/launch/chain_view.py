"""What the chain says about a network, read once per round for a node's pages and metrics.

Who is registered (each miner's EVM address, node key, slot and stake; each validator's stake)
and what every miner was paid, epoch by epoch, and has claimed. Reads are blocking web3 calls:
`ChainView.refresh` runs in a thread, `snapshot` is what the pages show meanwhile. A chain that
does not answer leaves the last snapshot in place with the error beside it (a dashboard must
say "the chain is unreachable", not go blank).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from adapters.chain.reward_history import EpochReward, RewardLedger
from protocol.domain_types import EvmAddress, PublicKey, Wei

_log = logging.getLogger("seedswarm.launch.chain_view")


@dataclass(frozen=True)
class Participant:
    """One registered account."""

    address: EvmAddress
    node_key: PublicKey | None
    """None when its registration event was not found (a pruned chain)."""
    stake: Wei
    slot: int | None = None
    """Miners: the account's slot in the weight vector."""


@dataclass(frozen=True)
class ChainSnapshot:
    """The chain's side of a network at one moment."""

    read_at: float = 0.0
    miners: tuple[Participant, ...] = ()
    validators: tuple[Participant, ...] = ()
    rewards: dict[EvmAddress, tuple[EpochReward, ...]] = field(default_factory=dict)
    claimed: dict[EvmAddress, Wei] = field(default_factory=dict)
    settled_epochs: tuple[int, ...] = ()
    error: str = ""
    """Why the last refresh failed ("" if it did not)."""

    @property
    def last_settled_epoch(self) -> int | None:
        return self.settled_epochs[-1] if self.settled_epochs else None

    def miner(self, node_key: PublicKey) -> Participant | None:
        return next((m for m in self.miners if m.node_key == node_key), None)

    def reward_of(self, address: EvmAddress, epoch: int | None) -> Wei:
        """What `address` was paid for `epoch` (0 if nothing, or `epoch` is None)."""
        return Wei(sum(r.amount for r in self.rewards.get(address, ()) if r.epoch == epoch))

    def total_of(self, address: EvmAddress) -> Wei:
        return Wei(sum(r.amount for r in self.rewards.get(address, ())))


class ChainView:
    """Reads a network's registry and rewards through a read-only chain client."""

    def __init__(self, client: Any, from_block: int = 0) -> None:
        """`client`: an adapters.chain.client.ChainClient (its account sends nothing)."""
        self.client = client
        self.ledger = RewardLedger(client.w3, client.incentives, from_block)
        self.snapshot = ChainSnapshot()

    def refresh(self) -> ChainSnapshot:
        """Read the chain now (blocking); on failure keep the last snapshot, with the error."""
        try:
            self.snapshot = self._read()
        except Exception as exc:  # any chain failure: the pages say so and keep the last view
            reason = f"{type(exc).__name__}: {exc}"[:300]
            if not self.snapshot.error:
                _log.warning("chain view: cannot read the chain: %s", reason)
            self.snapshot = ChainSnapshot(
                self.snapshot.read_at, self.snapshot.miners, self.snapshot.validators,
                self.snapshot.rewards, self.snapshot.claimed, self.snapshot.settled_epochs,
                error=reason)
        return self.snapshot

    def _read(self) -> ChainSnapshot:
        registry = self.client.registry
        keys: dict[EvmAddress, PublicKey] = {}
        for reg in registry.registrations():  # the latest binding of each account wins
            keys[reg.account] = reg.node_key
        miners = tuple(
            Participant(address, keys.get(address), registry.stake_of(address), slot)
            for slot, address in enumerate(registry.miner_slots()) if int(address, 16) != 0)
        validators = tuple(Participant(address, keys.get(address), registry.stake_of(address))
                           for address in registry.validators())
        self.ledger.refresh()
        accounts = [m.address for m in miners]
        return ChainSnapshot(
            read_at=time.time(), miners=miners, validators=validators,
            rewards={a: tuple(self.ledger.rewards(a)) for a in accounts},
            claimed={a: self.ledger.claimed(a) for a in accounts},
            settled_epochs=tuple(self.ledger.settled_epochs()),
        )
