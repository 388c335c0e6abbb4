"""What the validator service needs of its model and its scoring, as protocols.

validator/ may not import node/ (which owns models and the apply rule) or the simulator (which
owns the `RoundCertifier` seam), so the composition root hands the service an object that
satisfies `ValidatorEngine`, built from exactly the code the simulator runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from protocol.domain_types import Digest, ModelHash, PublicKey
from protocol.messages import Contribution, ScoreReceipt
from protocol.roundlog import CertifiedEntry
from protocol.signing import Signed
from runtime.follower import ReplicaPort
from validator.verification import FabricationProof


@dataclass(frozen=True)
class RoundDecision:
    """One validator's own scoring of one round: what it would certify and what it refused.

    Every validator scores every round it can; the leader certifies its `entries`, the others
    review the leader's certificate against `seen` and `rejected`, and each validator's books
    (epoch scores, ratings, receipts) come from its own decision, never from the leader's.
    """

    round_index: int
    prev_model_hash: ModelHash
    received: tuple[Signed[Contribution], ...]
    """The screened contributions it scored, in the canonical (sender) order."""
    entries: tuple[CertifiedEntry, ...]
    """(contribution, weight) it would certify; weights sum to 1 or the tuple is empty."""
    rejected: frozenset[Digest] = frozenset()
    """Envelope digests it found invalid (filters, failed verification, banned sender): a
    leader including one is disputed. Contributions it merely would not pay (no positive
    reward on its own evaluation data) are not listed: honest validators may differ there."""
    learned: tuple[Signed[Contribution], ...] = ()
    """Contributions it did not receive itself but found in a leader's bundle while reviewing
    (signature checked, audited in full before approving: see `unpaid`)."""
    unpaid: frozenset[Digest] = frozenset()
    """Digests it left out without finding them invalid (no positive reward on its own
    data): a leader may see them differently, so a reviewer audits these before approving a
    certificate that includes one (`ValidatorEngine.audit`)."""
    rewards: Mapping[PublicKey, float] = field(default_factory=dict)
    """Its per-miner reward scores for the round (miner public key -> score)."""
    released: Mapping[PublicKey, float] | None = None
    """Score released for payment this round (``RoundScoring.released``); None: an engine
    that holds nothing back, whose rewards are paid as earned."""
    forfeited: frozenset[PublicKey] = frozenset()
    """Miners whose epoch score this round's failed audit forfeits."""
    proofs: tuple[FabricationProof, ...] = ()
    """The fabrications its audits proved this round (the evidence of a slash vote)."""
    receipts: Mapping[PublicKey, ScoreReceipt] = field(default_factory=dict)
    """The receipt its scoring issued each miner it scored (why it scored what it did)."""

    @property
    def seen(self) -> dict[Digest, Contribution]:
        """Envelope digest -> contribution, for `ReviewContext.seen`."""
        return {signed.digest: signed.message for signed in (*self.received, *self.learned)}

    def weights(self) -> dict[PublicKey, float]:
        """Miner -> the weight this validator would certify it with (0 when left out)."""
        out = {signed.message.sender: 0.0 for signed in self.received}
        for contribution, weight in self.entries:
            out[contribution.sender] = weight
        return out


class ValidatorEngine(ReplicaPort, Protocol):
    """A replica that can also score a round and preview a certificate's result."""

    def score(self, received: Sequence[Signed[Contribution]]) -> RoundDecision:
        """This validator's decision for the round at `round_index`, from the screened
        messages as received (a scoring pipeline re-checks the raw bytes). Does not touch the
        model and does not record anything as certified."""
        ...

    def audit(self, decision: RoundDecision, digests: Sequence[Digest]) -> frozenset[Digest]:
        """Audit the contributions `digests` of `decision` (its round = the replica's round)
        in full; returns the digests that failed."""
        ...

    def preview(self, entries: Sequence[CertifiedEntry]) -> ModelHash:
        """The model hash applying `entries` to a copy of the current model gives."""
        ...

    def validation_loss(self) -> float:
        """Loss of the current model on the task's validation batch."""
        ...


@runtime_checkable
class ReceiptSource(Protocol):
    """An engine whose scoring issues its own receipts (served instead of weight-only ones)."""

    def receipt(self, miner: PublicKey, round_index: int) -> ScoreReceipt | None:
        """The receipt this validator's scoring issued `miner` for `round_index`, if any."""
        ...


@runtime_checkable
class Penalizer(Protocol):
    """An engine whose scoring books proven offences (a failed audit's ban and forfeit)."""

    def penalize(self, miner: PublicKey, round_index: int) -> None:
        """Treat `miner` as having failed an audit in `round_index`."""
        ...
