"""A live validator's engine: the certified model state scored by the validator's pipeline.

`ScoringEngine` satisfies `ValidatorEngine` with the code every validator runs, live or
simulated: `validator.scorer.ScoringCertifier` (the scoring pipeline fed the raw envelopes) on
the live replica's round context. The round is scored without being recorded as certified;
the pipeline's cascade history is fed only the bundles that became final, as `apply_bundle`
applies them, so every validator's cascade credits what the network really certified,
whatever its own decision was.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from protocol.domain_types import Digest, ModelHash, PublicKey
from protocol.membership import MembershipTimeline
from protocol.messages import Contribution, ScoreReceipt
from protocol.roundlog import CertifiedEntry, RoundBundle
from protocol.signing import Signed
from runtime.model_state import ModelState
from training.round_context import RoundContext
from training.work import WorkConfig
from validator.scorer import ScoringCertifier
from validator.scorer_store import save_scoring
from validator.service.ports import RoundDecision


@dataclass
class ScoringEngine:
    """`ValidatorEngine` over the node's `ModelState` and its `ScoringCertifier`."""

    state: ModelState
    scorer: ScoringCertifier
    miners: Collection[PublicKey] | MembershipTimeline
    """The registered miners: a timeline (each round its own set) or one fixed set."""
    work: WorkConfig

    @property
    def round_index(self) -> int:
        return self.state.round_index

    @property
    def model_hash(self) -> ModelHash:
        return self.state.model_hash

    def round_context(self) -> RoundContext:
        """The replica's round as the pipeline sees it."""
        return self.state.round_context(self.miners, self.work)

    def apply_bundle(self, bundle: RoundBundle) -> ModelHash:
        new_hash = self.state.apply_bundle(bundle)
        self.observe_final(bundle)
        return new_hash

    def observe_final(self, bundle: RoundBundle) -> None:
        """Tell the scoring pipeline what round `bundle.round_index` finally certified."""
        self.scorer.pipeline.observe_certified(bundle.round_index, bundle.entries())

    def save(self, directory: Path) -> Path:
        path = self.state.save(directory)
        save_scoring(self.scorer, directory)
        return path

    def reload(self, directory: Path) -> None:
        self.state.reload(directory)

    def score(self, received: Sequence[Signed[Contribution]]) -> RoundDecision:
        """This validator's own decision for the replica's round (see `RoundDecision`)."""
        ctx = self.round_context()
        # arrival order is each validator's own; the pipeline sees one canonical order
        ordered = tuple(sorted(received, key=lambda s: s.message.sender))
        scoring = self.scorer.score_envelopes(ctx, [s.envelope for s in ordered])
        return RoundDecision(
            round_index=ctx.round_index, prev_model_hash=ctx.base_model_hash,
            received=ordered, entries=scoring.certified, rejected=scoring.invalid,
            unpaid=scoring.rejected - scoring.invalid,
            rewards={m: r.reward for m, r in scoring.miners.items()},
            released=scoring.released, forfeited=scoring.forfeited, proofs=scoring.proofs,
            receipts={m: r.receipt for m, r in scoring.miners.items()},
        )

    def audit(self, decision: RoundDecision, digests: Sequence[Digest]) -> frozenset[Digest]:
        """Full audits of `decision`'s contributions `digests`; the digests that failed."""
        seen = decision.seen
        known = [d for d in digests if d in seen]
        if not known:
            return frozenset()
        passed = self.scorer.audit(self.round_context(), [seen[d] for d in known])
        return frozenset(d for d, ok in zip(known, passed, strict=True) if not ok)

    def penalize(self, miner: PublicKey, round_index: int) -> None:
        """Book a proven equivocation of `miner` in `round_index` like a failed audit."""
        self.scorer.pipeline.penalize(round_index, miner)

    def preview(self, entries: Sequence[CertifiedEntry]) -> ModelHash:
        """The hash of the model `entries` would give, computed on a detached copy."""
        return self.state.replica.detached().apply_round(entries)

    def receipt(self, miner: PublicKey, round_index: int) -> ScoreReceipt | None:
        """The scoring pipeline's receipt for ``miner`` in ``round_index``, if it scored it."""
        return self.scorer.receipt(miner, round_index)

    def validation_loss(self) -> float:
        return self.state.validation_loss()
