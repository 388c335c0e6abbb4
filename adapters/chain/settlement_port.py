"""The chain as one validator account's epoch duties use it: the port the validator service
depends on, as it depends on `adapters.transport.base.Transport` for the network.

Two implementations: `chain_settlement.ChainSettlement` (the contracts over web3.py) and
`memory_settlement.MemorySettlement` (the same rules on `memory_chain.MemoryChain`, in
process). Both answer alike, refusals included: a refusal the contracts make is a
`ChainRevert` carrying the contract's error name (``CommitWindowClosed``, ``RevealMismatch``,
``EpochAlreadySettled``...), so a caller treats it the same whichever chain it talks to.

Submission is once-only per epoch and account, across restarts: the first `commit` journals
the weights and salt before anything is sent, later calls send nothing new, and `reveal`
reveals the journaled weights, never others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from protocol.domain_types import PublicKey
from protocol.settlement.params import EpochStatus, EpochWindows


@runtime_checkable
class SettlementPort(Protocol):
    """One validator account's view of epoch settlement: schedule, miner slots, its own
    commit and reveal, and settlement (which anyone may run)."""

    def windows(self, epoch: int) -> EpochWindows:
        """When `epoch`'s commit window opens (the epoch's end), its reveal window opens, and
        settlement may begin (the reveal window's close)."""
        ...

    def next_block_time(self) -> float:
        """The timestamp a transaction sent now is judged at: the windows are compared with
        this, not with the caller's clock (a chain's time may run ahead of it)."""
        ...

    def miner_slots(self) -> Mapping[PublicKey, int]:
        """Registered miners now: Ed25519 node key -> its index in the weight vector."""
        ...

    def commit(self, epoch: int, weights: Sequence[int]) -> bool:
        """Commits the digest of `weights` (uint16 per slot, summing to WEIGHT_SCALE) for
        `epoch` unless this account's journal already fixed the epoch's weights, in which case
        those are the ones committed. True if a commitment was sent now, False if the chain
        already held it. Refusals: CommitWindowNotOpen, CommitWindowClosed, NotValidator
        (ChainRevert); JournalConflict if the chain holds another commitment of this account."""
        ...

    def reveal(self, epoch: int) -> bool:
        """Reveals the journaled weights and salt of `epoch`. True if sent now, False if the
        chain already holds the reveal. Refusals: RevealWindowNotOpen, RevealWindowClosed,
        NoCommitment, RevealMismatch (ChainRevert); JournalConflict if nothing was journaled."""
        ...

    def settle(self, epoch: int) -> EpochStatus:
        """Settles `epoch` completely; returns how it closed (SETTLED, or NO_QUORUM when the
        revealed stake was not above half the validator stake at the epoch's end). Refusals:
        SettlementNotOpen, EpochAlreadySettled (ChainRevert)."""
        ...

    def epoch_status(self, epoch: int) -> EpochStatus:
        """Where `epoch`'s settlement stands."""
        ...

    def vote_slash(self, miner: PublicKey, epoch: int, evidence_hash: bytes) -> bool:
        """Votes that the miner with node key `miner` fabricated a contribution in `epoch`;
        `evidence_hash` is `protocol.settlement.slashing.evidence_hash` of the signed
        contribution. True if this vote completed the slash (a stake majority at the epoch's
        end): the miner's bond is burned and it is deregistered. Refusals: EpochNotEnded,
        NotValidator, NotSlashable (no bond left: never registered, withdrawn or already
        slashed), AlreadyVotedSlash, AlreadySlashed (ChainRevert); ChainError if no account
        ever posted a miner bond under `miner`."""
        ...
