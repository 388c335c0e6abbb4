"""The settlement port over an in-process `MemoryChain`, for one validator account.

Commit and reveal follow the same journal rules as the web3 `WeightSubmitter` (a
`SubmissionJournal` on disk: the first call fixes an epoch's weights and salt, a restart with
the same journal sends nothing twice), so a service test exercises the once-only behaviour
production relies on. Transactions here are applied at once: there is nothing pending to wait
for after a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from eth_utils.address import to_checksum_address

from adapters.chain.chain_errors import ChainError
from adapters.chain.journal import SubmissionJournal
from adapters.chain.memory_chain import MemoryChain
from protocol.domain_types import PublicKey
from protocol.settlement.params import EpochStatus, EpochWindows


class MemorySettlement:
    """`SettlementPort` for `account` on `chain`, journaling to `journal_path`."""

    def __init__(self, chain: MemoryChain, account: str, journal_path: Path) -> None:
        self._chain = chain
        self._account = to_checksum_address(account)
        scope = f"memory:{chain.chain_id}:{self._account}".lower()
        self._journal = SubmissionJournal(journal_path, scope)

    @property
    def account(self) -> str:
        """The account this port commits and reveals for."""
        return self._account

    def windows(self, epoch: int) -> EpochWindows:
        return self._chain.windows(epoch)

    def next_block_time(self) -> float:
        return float(self._chain.block_time())

    def miner_slots(self) -> dict[PublicKey, int]:
        return {self._chain.node_key_of(account): slot
                for slot, account in enumerate(self._chain.miner_slots()) if account is not None}

    def commit(self, epoch: int, weights: Sequence[int]) -> bool:
        entry = self._journal.fix(epoch, weights)
        if entry.is_committed(self._account, self._chain.commitment(epoch, self._account)):
            return False
        self._chain.commit_weights(self._account, epoch, entry.digest(self._account))
        return True

    def reveal(self, epoch: int) -> bool:
        entry = self._journal.require(epoch)
        if self._chain.commitment(epoch, self._account).revealed:
            return False
        self._chain.reveal_weights(self._account, epoch, entry.weights, entry.salt)
        return True

    def settle(self, epoch: int) -> EpochStatus:
        return self._chain.settle(epoch)

    def epoch_status(self, epoch: int) -> EpochStatus:
        return self._chain.epoch_status(epoch)

    def vote_slash(self, miner: PublicKey, epoch: int, evidence_hash: bytes) -> bool:
        account = self._chain.account_of_node_key(miner)
        if account is None:
            raise ChainError(f"no miner bond was ever posted under node key {miner.hex()}: "
                             "check the key the fabricated contribution was signed with")
        return self._chain.vote_slash(self._account, account, epoch, evidence_hash)
