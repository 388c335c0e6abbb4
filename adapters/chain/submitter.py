"""Exactly-once weight submission per epoch, across crashes and restarts."""

from __future__ import annotations

from collections.abc import Sequence

from hexbytes import HexBytes

from adapters.chain.deployment import TxResult
from adapters.chain.incentives_contract import IncentivesClient
from adapters.chain.journal import SubmissionJournal
from adapters.chain.sender import TransactionSender


class WeightSubmitter:
    """Commits and reveals a validator's weights, consulting the journal and the chain first.

    The first call for an epoch fixes its weights: later calls (in this process or after a
    restart with the same journal) reuse the journaled weights and salt, wait for a transaction
    that was sent but not yet mined, and send nothing the chain already has.
    """

    def __init__(
        self, incentives: IncentivesClient, sender: TransactionSender, journal: SubmissionJournal
    ) -> None:
        self._incentives = incentives
        self._sender = sender
        self._journal = journal

    def commit(self, epoch: int, weights: Sequence[int]) -> TxResult | None:
        """Commits `weights` for `epoch` unless already done; returns the transaction if sent."""
        entry = self._journal.fix(epoch, weights)
        self._await_recorded(entry.commit_tx)
        if entry.is_committed(self._sender.address, self._incentives.commitment(epoch)):
            return None
        fn = self._incentives.contract.functions.commitWeights(
            epoch, entry.digest(self._sender.address)
        )
        journaled = entry

        def record(tx_hash: str) -> None:
            self._journal.put(journaled.with_commit_tx(tx_hash))

        return self._sender.confirm(fn, 0, self._sender.submit(fn, on_signed=record))

    def reveal(self, epoch: int) -> TxResult | None:
        """Reveals the journaled weights for `epoch` unless already revealed."""
        entry = self._journal.require(epoch)
        self._await_recorded(entry.reveal_tx)
        if self._incentives.commitment(epoch).revealed:
            return None
        fn = self._incentives.contract.functions.revealWeights(
            epoch, list(entry.weights), entry.salt
        )

        def record(tx_hash: str) -> None:
            self._journal.put(entry.with_reveal_tx(tx_hash))

        return self._sender.confirm(fn, 0, self._sender.submit(fn, on_signed=record))

    def weights_for(self, epoch: int) -> tuple[int, ...] | None:
        """The weights this validator committed (or will commit) for `epoch`."""
        entry = self._journal.get(epoch)
        return None if entry is None else entry.weights

    def _await_recorded(self, tx_hash: str | None) -> None:
        # A hash journaled just before a crash may never have reached the node.
        if tx_hash is not None and self._sender.is_known(HexBytes(tx_hash)):
            self._sender.wait(HexBytes(tx_hash))
