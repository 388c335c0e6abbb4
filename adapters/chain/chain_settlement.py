"""The settlement port over the deployed contracts: a ChainClient with a weight journal."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from adapters.chain.chain_errors import ChainError
from adapters.chain.client import ChainClient
from adapters.chain.submitter import WeightSubmitter
from protocol.domain_types import PublicKey
from protocol.settlement.params import EpochStatus, EpochWindows


class ChainSettlement:
    """`SettlementPort` for the client's account: commit and reveal go through its journaled
    `WeightSubmitter`, so the once-only guarantee is the submitter's."""

    def __init__(
        self, client: ChainClient, *, wall_clock: Callable[[], float] = time.time
    ) -> None:
        """`client` must have been connected with a journal path (ChainClient.connect)."""
        if client.weights is None:
            raise ChainError("the chain client was connected without a weight journal")
        self._client = client
        self._weights: WeightSubmitter = client.weights
        self._wall_clock = wall_clock

    @property
    def client(self) -> ChainClient:
        """The client this port sends through."""
        return self._client

    def windows(self, epoch: int) -> EpochWindows:
        return self._client.incentives.windows(epoch)

    def next_block_time(self) -> float:
        """Dev chains stamp a block max(wall clock, parent + 1), so a burst of transactions
        (or a test's time travel) runs chain time ahead of the wall clock."""
        latest = int(self._client.w3.eth.get_block("latest")["timestamp"])
        return max(self._wall_clock(), latest + 1.0)

    def miner_slots(self) -> dict[PublicKey, int]:
        """Read from the Registry now: one call for the slots, one per occupied slot."""
        registry = self._client.registry
        slots: dict[PublicKey, int] = {}
        for index, account in enumerate(registry.miner_slots()):
            if int(account, 16) != 0:
                slots[registry.node_key_of(account)] = index
        return slots

    def commit(self, epoch: int, weights: Sequence[int]) -> bool:
        return self._weights.commit(epoch, weights) is not None

    def reveal(self, epoch: int) -> bool:
        return self._weights.reveal(epoch) is not None

    def settle(self, epoch: int) -> EpochStatus:
        self._client.incentives.settle(epoch)
        return self.epoch_status(epoch)

    def epoch_status(self, epoch: int) -> EpochStatus:
        return self._client.incentives.epoch_status(epoch)

    def vote_slash(self, miner: PublicKey, epoch: int, evidence_hash: bytes) -> bool:
        """The account bound to `miner` now, else the last one that registered a miner bond
        under it (a miner that left is slashable while its bond unbonds)."""
        registry = self._client.registry
        account = registry.bonded_account_of(miner)
        if account is None:
            raise ChainError(f"no miner bond was ever posted under node key {miner.hex()}: "
                             "check the key the fabricated contribution was signed with")
        registry.vote_slash(account, epoch, evidence_hash)
        _, slashed = registry.slash_support(account, epoch, evidence_hash)
        return slashed
