"""A validator's scoring of a round: ``validator.pipeline`` run on the round's model.

``ScoringCertifier`` is what every validator runs, live (through validator.service.engine) or
simulated: each round it turns the published envelopes into ``Arrival``s (the round's own time
frame gives round r the window [r, r + 1) and every message arrives mid-window: the live
service has already enforced the real deadline), builds the round's ``FilterContext`` and
``ModelRoundOracle``, lets the pipeline decide, and keeps every receipt sealed with the
validator's key, queryable per miner. A simulation records what the round certified at once
(``certify_envelopes``); a live validator only when a certificate becomes final.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from protocol.domain_types import PublicKey
from protocol.identity import NodeKey
from protocol.messages import Contribution, ScoreReceipt
from protocol.netconfig import NetworkConfig
from protocol.signing import seal
from training.replica import CertifiedEntry
from training.round_context import RoundContext
from validator.filters import FilterContext, RoundWindow
from validator.model_oracle import ModelRoundOracle
from validator.pipeline import ScoringPipeline
from validator.pipeline_types import Arrival, RoundScoring, ScoringPolicy
from validator.ratings import RatingStore


def validator_secret(key: NodeKey) -> bytes:
    """The validator's private sampling secret, derived from its key (never published; the
    BLAKE2b personalization predates the move out of the simulator and is kept so that scoring
    draws the same samples as before)."""
    return hashlib.blake2b(key.to_bytes(), digest_size=32, person=b"ss:sim-secret").digest()


@dataclass
class ScoringTotals:
    """Compute the validator spent, in forward-pass equivalents, next to the miners'."""

    verify_passes: int = 0
    miner_passes: int = 0
    value_passes: int = 0

    @property
    def verification_fraction(self) -> float:
        """Stage-2 verification compute / the checked contributions' honest compute."""
        return self.verify_passes / self.miner_passes if self.miner_passes else 0.0


@dataclass
class ScoringCertifier:
    """Certifies each round by the validator pipeline (the ``EnvelopeCertifier`` seam)."""

    network: NetworkConfig
    key: NodeKey
    policy: ScoringPolicy = field(default_factory=ScoringPolicy)
    influence_samples: int = 64
    ratings: RatingStore = field(default_factory=RatingStore)
    keep_rounds: int | None = None
    """Forget round records beyond this many (a long-lived validator); None keeps all, which
    ``reward_totals`` needs."""

    def __post_init__(self) -> None:
        self.pipeline = ScoringPipeline(
            self.network, validator=self.key.public.raw, secret=validator_secret(self.key),
            policy=self.policy, ratings=self.ratings,
        )
        self.rounds: list[RoundScoring] = []
        self.sealed: dict[PublicKey, list[bytes]] = {}
        self.totals = ScoringTotals()

    def certify_envelopes(
        self, ctx: RoundContext, envelopes: Sequence[bytes]
    ) -> list[CertifiedEntry]:
        """Score the round's messages and return the certified entries (this validator's
        decision is what the round certifies: the simulator's single certifier)."""
        scoring = self.score_envelopes(ctx, envelopes)
        self.pipeline.observe_certified(ctx.round_index, scoring.certified)
        return list(scoring.certified)

    def score_envelopes(self, ctx: RoundContext, envelopes: Sequence[bytes]) -> RoundScoring:
        """Score the round's messages without recording what the round certified: a live
        validator learns that only when a certificate becomes final (``observe_certified``)."""
        r = ctx.round_index
        window = RoundWindow(r, opens_at=float(r), deadline=float(r + 1))
        filter_ctx = FilterContext(
            network=self.network, window=window, certified_hash=ctx.base_model_hash,
            registered=frozenset(ctx.miner_keys), num_blocks=len(ctx.named),
        )
        oracle = ModelRoundOracle(ctx, self.network.outer_lr, self.influence_samples)
        arrivals = [Arrival(raw, received_at=r + 0.5) for raw in envelopes]
        scoring = self.pipeline.score_round(arrivals, filter_ctx, oracle)
        self.rounds.append(scoring)
        if self.keep_rounds is not None:
            del self.rounds[: max(0, len(self.rounds) - self.keep_rounds)]
        else:
            for receipt in scoring.receipts:
                self.sealed.setdefault(receipt.miner, []).append(seal(receipt, self.key))
        self.totals.verify_passes += scoring.verify_passes
        self.totals.miner_passes += scoring.miner_passes
        self.totals.value_passes += oracle.forward_passes
        return scoring

    def audit(self, ctx: RoundContext, contributions: Sequence[Contribution]) -> list[bool]:
        """Full audits of ``contributions`` of the round ``ctx`` (see
        ``ScoringPipeline.audit``); True for each that passed."""
        oracle = ModelRoundOracle(ctx, self.network.outer_lr, self.influence_samples)
        return [self.pipeline.audit(ctx.round_index, c, oracle).verified is not False
                for c in contributions]

    def receipts(self, miner: PublicKey) -> list[ScoreReceipt]:
        """Every receipt this validator issued to ``miner``, oldest first."""
        return [
            r.miners[miner].receipt for r in self.rounds if miner in r.miners
        ]

    def receipt(self, miner: PublicKey, round_index: int) -> ScoreReceipt | None:
        """The receipt issued to ``miner`` for ``round_index`` (None if not scored here)."""
        for scored in reversed(self.rounds):
            if scored.round_index == round_index:
                found = scored.miners.get(miner)
                return None if found is None else found.receipt
        return None

    def epoch_weights(self) -> list[dict[str, int]]:
        """The weight vectors of the epochs that closed, in order."""
        return [r.epoch_weights for r in self.rounds if r.epoch_weights is not None]

    def reward_totals(self, owed: bool = False) -> dict[str, float]:
        """Each miner's share of all rewards so far (hex key, summing to 1 when anyone earned).

        Every round carries the same emission: a closed epoch counts with its weight vector
        over its rounds, the open epoch with its scores normalized the same way over the
        rounds it has run. Paid only (released score), unless ``owed``: then what miners hold
        until their next passed audit counts with the open epoch (an honest miner's held
        reward is deferred, not lost).
        """
        from validator.weights import epoch_weights

        length = self.network.epoch_length
        epochs = [(w, length) for w in self.epoch_weights()]
        open_rounds = len(self.rounds) % length
        if open_rounds:
            scores = self.pipeline.epoch_scores(owed)
            if any(v > 0.0 for v in scores.values()):
                epochs.append((epoch_weights(scores, self.policy.weights), open_rounds))
        paid_rounds = sum(n for _, n in epochs)
        totals: dict[str, float] = {}
        for weights, n in epochs:
            for k, v in weights.items():
                totals[k] = totals.get(k, 0.0) + v / 1e9 * n / paid_rounds
        return totals
