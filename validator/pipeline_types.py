"""The scoring pipeline's vocabulary: what it asks of the model (`RoundOracle`), what it is
fed (`Arrival`), its constants (`ScoringPolicy`), what it remembers per miner (`MinerBook`) and
what it decides (`MinerRound`, `RoundScoring`). The stages themselves are validator.pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from protocol.domain_types import Digest, PublicKey
from protocol.messages import CertEntry, Contribution, ScoreReceipt
from validator.certificate import WeightMode
from validator.filters import FilterCounters, FilterReason
from validator.liveness import LivenessPolicy, Presence
from validator.loss_delta import INDICATOR_ALPHA, LossMeasurement
from validator.outcome import MatchScorePolicy, RoundOutcome
from validator.reward import RewardPolicy
from validator.trust import AuditRecord, TrustPolicy
from validator.verification import FabricationProof, VerificationPolicy, VerificationResult
from validator.weights import WeightPolicy

WeightedContribution = tuple[Contribution, float]


class RoundOracle(Protocol):
    """What the pipeline asks of the round's certified model (implemented next to the model).

    Weights are the scale at which a contribution is applied alone: ``weight · δ_c`` with δ_c
    what the apply rule adds at weight 1. ``influence`` must accept contributions certified in
    earlier rounds (the cascade) and measure them on the current model.
    """

    def recompute(self, contribution: Contribution, indices: Sequence[int]) -> list[float]:
        """Raw scalars at ``indices``, as an honest sender computes them."""
        ...

    def assigned_loss(self, contribution: Contribution) -> float:
        """The model's loss on the sender's assigned data (the ZO noise floor's scale)."""
        ...

    def num_train_samples(self) -> int:
        """How many training samples the task has (the range of random evaluation data)."""
        ...

    def measure(
        self, contribution: Contribution, weight: float, random_indices: Sequence[int]
    ) -> LossMeasurement:
        """Losses before/after applying the contribution: assigned data and these samples."""
        ...

    def influence(self, contribution: Contribution, weight: float) -> float:
        """``∇L_valᵀ (weight · δ_c)`` on the current model (nats; negative = helpful)."""
        ...

    def validation_loss(self) -> float:
        """The current model's loss on the validation data ``influence`` uses."""
        ...


@dataclass(frozen=True)
class Arrival:
    """One message as received: its bytes and when (validator clock, seconds)."""

    raw: bytes
    received_at: float


@dataclass(frozen=True)
class ScoringPolicy:
    """Every constant of the pipeline; see the modules each part comes from.

    ``random_samples = 32``: the validator's random evaluation batch (Templar's HEAD used 8;
    more samples cost a few forward passes and steady the own-vs-random comparison).
    ``cascade_hops = 2`` with ``cascade_decay = 0.5``: influence keeps being credited for two
    rounds after certification, at 1/2 and 1/4 weight.
    """

    verification: VerificationPolicy = field(default_factory=VerificationPolicy)
    trust: TrustPolicy = field(default_factory=TrustPolicy)
    reward: RewardPolicy = field(default_factory=RewardPolicy)
    match: MatchScorePolicy = field(default_factory=MatchScorePolicy)
    weights: WeightPolicy = field(default_factory=WeightPolicy)
    liveness: LivenessPolicy = field(default_factory=LivenessPolicy)
    certificate_mode: WeightMode = WeightMode.SCALARS
    random_samples: int = 32
    cascade_hops: int = 2
    cascade_decay: float = 0.5
    indicator_alpha: float = INDICATOR_ALPHA


@dataclass
class MinerBook:
    """What this validator remembers about one miner between rounds."""

    audits: AuditRecord = field(default_factory=AuditRecord)
    indicator: float = 0.0
    presence: Presence | None = None
    epoch_score: float = 0.0
    """Released score: what the current epoch's weights pay this miner."""
    held: float = 0.0
    """Score earned since the miner's last passed audit: released into ``epoch_score`` by the
    next passed audit, forfeited by a failed one, carried over when an epoch closes."""

    def release(self) -> None:
        """A passed audit: everything held becomes payable."""
        self.epoch_score += self.held
        self.held = 0.0


@dataclass(frozen=True)
class MinerRound:
    """One miner's round as this validator saw it."""

    miner: PublicKey
    filter: FilterReason
    detail: str
    contribution: Contribution | None
    digest: Digest | None
    verification: VerificationResult | None
    outcome: RoundOutcome
    value: float
    reward: float
    weight_ppb: int
    receipt: ScoreReceipt


@dataclass(frozen=True)
class RoundScoring:
    """Everything ``score_round`` decided.

    ``entries`` are certificate entries (canonical order, ppb summing to 1e9, or empty);
    ``certified`` the same as (contribution, weight) pairs for an apply. Costs are in
    forward-pass equivalents (``validator.verification.VerificationCost``): ``verify_passes``
    what stage 2 spent, ``miner_passes`` what the miners spent on the contributions that
    reached stage 2; ``value_passes`` is not known here (the oracle counts it).
    """

    round_index: int
    miners: dict[PublicKey, MinerRound]
    refused: int
    entries: tuple[CertEntry, ...]
    certified: tuple[WeightedContribution, ...]
    epoch_weights: dict[str, int] | None
    verify_passes: int
    miner_passes: int
    counters: FilterCounters
    rejected: frozenset[Digest] = frozenset()
    """Digests of every contribution this validator would not certify (failed filters,
    verification, ban, or no positive reward)."""
    invalid: frozenset[Digest] = frozenset()
    """The objective part of ``rejected``: failed filters, failed verification, banned
    sender. A reviewer passes these as ``ReviewContext.rejected``: "no positive reward" rests
    on this validator's own random evaluation data, so honest validators can differ on it,
    while a failed check is a fact any leader could have found."""
    proofs: tuple[FabricationProof, ...] = ()
    """One proof per contribution that failed verification this round: the sender's signed
    contribution and the recomputed scalars (``validator.verification.confirm_fabrication``),
    what a slash of the sender's registration bond rests on."""
    released: dict[PublicKey, float] = field(default_factory=dict)
    """Score released for payment this round (held reward freed by a passed audit), by miner:
    what the epoch's weights pay, unlike ``MinerRound.reward`` (earned, maybe still held)."""
    forfeited: frozenset[PublicKey] = frozenset()
    """Miners that failed an audit this round: their epoch's score is forfeited."""

    @property
    def receipts(self) -> list[ScoreReceipt]:
        return [m.receipt for _, m in sorted(self.miners.items())]
