"""Typed access to the Incentives contract: commit / reveal, settlement, claims, Merkle path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.contract import Contract

from adapters.chain.artifacts import load_artifact
from adapters.chain.deployment import TxResult
from adapters.chain.sender import TransactionSender
from protocol.domain_types import EvmAddress, Wei
from protocol.settlement.params import Commitment, EconomicParams, EpochStatus, EpochWindows


class IncentivesClient:
    """Incentives calls on behalf of the sender's account (no journaling; see WeightSubmitter)."""

    def __init__(self, w3: Web3, address: str, sender: TransactionSender) -> None:
        self._contract: Contract = w3.eth.contract(
            address=to_checksum_address(address), abi=list(load_artifact("Incentives").abi)
        )
        self._sender = sender

    @property
    def contract(self) -> Contract:
        """The underlying web3 contract."""
        return self._contract

    @property
    def account(self) -> EvmAddress:
        """The account this client sends from."""
        return self._sender.address

    # -- transactions

    def commit(self, epoch: int, digest: bytes) -> TxResult:
        """Commits a weight digest for `epoch` (see weights.commit_digest)."""
        return self._sender.send(self._contract.functions.commitWeights(epoch, digest))

    def reveal(self, epoch: int, weights: Sequence[int], salt: bytes) -> TxResult:
        """Reveals the weights and salt behind the commitment."""
        fn = self._contract.functions.revealWeights(epoch, list(weights), salt)
        return self._sender.send(fn)

    def settle_chunk(self, epoch: int, max_miners: int = 0) -> TxResult:
        """Settles up to `max_miners` more slots (0 = all that remain)."""
        return self._sender.send(self._contract.functions.settle(epoch, max_miners))

    def settle(self, epoch: int, chunk: int = 0) -> list[TxResult]:
        """Settles `epoch` completely, in chunks of `chunk` slots (0 = one transaction)."""
        results = [self.settle_chunk(epoch, chunk)]
        while self.epoch_status(epoch) == EpochStatus.SETTLING:
            results.append(self.settle_chunk(epoch, chunk))
        return results

    def claim(self) -> TxResult:
        """Mints the account's credited rewards (reverts NothingToClaim when there are none)."""
        return self._sender.send(self._contract.functions.claim())

    def propose_root(self, epoch: int, root: bytes, total: Wei) -> TxResult:
        """Votes for paying `epoch` by a Merkle root whose leaves sum to `total`."""
        return self._sender.send(self._contract.functions.proposeRoot(epoch, root, total))

    def claim_merkle(
        self, epoch: int, account: EvmAddress, amount: Wei, proof: Sequence[bytes]
    ) -> TxResult:
        """Mints `amount` to `account` for a Merkle-settled `epoch`."""
        fn = self._contract.functions.claimMerkle(
            epoch, to_checksum_address(account), amount, list(proof)
        )
        return self._sender.send(fn)

    # -- views

    def economic_params(self) -> EconomicParams:
        """Emission, split, kappa and windows."""
        return EconomicParams.from_tuple(self._view(self._contract.functions.economicParams()))

    def windows(self, epoch: int) -> EpochWindows:
        """When `epoch`'s commit and reveal windows open and settlement may begin."""
        commit, reveal, settle = self._view(self._contract.functions.windows(epoch))
        return EpochWindows(int(commit), int(reveal), int(settle))

    def commitment(self, epoch: int, validator: EvmAddress | None = None) -> Commitment:
        """The commitment of `validator` (default: the sender) for `epoch`."""
        raw = self._view(self._contract.functions.commitment(epoch, self._who(validator)))
        digest, stake, revealed = tuple(raw)
        return Commitment(bytes(digest), Wei(int(stake)), bool(revealed))

    def revealed_weights(
        self, epoch: int, validator: EvmAddress | None = None
    ) -> tuple[int, ...]:
        """The weights `validator` revealed for `epoch` (empty if none)."""
        fn = self._contract.functions.revealedWeights(epoch, self._who(validator))
        return tuple(int(w) for w in self._view(fn))

    def epoch_status(self, epoch: int) -> EpochStatus:
        """Open, settling, settled, no quorum, or Merkle-settled."""
        return EpochStatus(int(self._view(self._contract.functions.epochStatus(epoch))))

    def claimable(self, account: EvmAddress | None = None) -> Wei:
        """Credited, unclaimed rewards of `account`."""
        return Wei(int(self._view(self._contract.functions.claimable(self._who(account)))))

    def miner_performances(self) -> tuple[int, ...]:
        """Per slot, the performance from the latest directly settled epoch."""
        return tuple(int(p) for p in self._view(self._contract.functions.minerPerformances()))

    def consensus_weight(
        self, weights: Sequence[int], stakes: Sequence[int], kappa_bps: int
    ) -> int:
        """The contract's own consensus function, evaluated by eth_call."""
        fn = self._contract.functions.consensusWeight(list(weights), list(stakes), kappa_bps)
        return int(self._view(fn))

    def root_support(self, epoch: int, root: bytes, total: Wei) -> Wei:
        """Stake that voted for (root, total) in `epoch`."""
        return Wei(int(self._view(self._contract.functions.rootSupport(epoch, root, total))))

    def _who(self, account: EvmAddress | None) -> str:
        return to_checksum_address(account or self._sender.address)

    def _view(self, fn: object) -> Any:
        return self._sender.call_decoded(fn)
