"""What a validator learned about one miner in one round, and the scores derived from it.

``RoundOutcome`` gathers the per-round facts (filters, verification, sync, loss deltas,
influence, indicator average, liveness) as plain values, so the simulator and the live validator
fill it the same way. From it come the match score that ranks miners in the OpenSkill match,
the gated final score, and a one-line reason for the score receipt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from protocol.errors import ConfigError
from validator.gates import final_score
from validator.loss_delta import LossDelta
from validator.ratings import Rating


@dataclass(frozen=True)
class RoundOutcome:
    """Per-miner, per-round results. ``verified`` None: no scalar was recomputed.

    ``trusted``: the miner is past its probation and not banned (``validator.trust``), so an
    unaudited round passes the verification gate. ``cascade``: the decayed sum of the
    influence, measured on this round's model, of the miner's contributions certified in
    earlier rounds (DICE hops >= 1; nats, negative = helpful).
    """

    filters_passed: bool
    verified: bool | None
    synced: bool
    delta: LossDelta | None
    influence: float | None
    indicator_average: float
    liveness: float = 1.0
    trusted: bool = False
    cascade: float | None = None


@dataclass(frozen=True)
class MatchScorePolicy:
    """Weights of the two value signals in the match score (both relative improvements).

    Half random-data loss improvement (Gauntlet's gradient score), half DICE influence on the
    validation loss expressed as -influence / L_val (the one-hop influence plus the cascade of
    earlier rounds): equal weights because both are unitless fractions of the loss and neither
    is known to be the better predictor yet.
    """

    random_weight: float = 0.5
    influence_weight: float = 0.5

    def __post_init__(self) -> None:
        for w in (self.random_weight, self.influence_weight):
            if not (math.isfinite(w) and w >= 0.0):
                raise ConfigError(f"match score weights must be finite and >= 0, got {w}")


def passes_gates(outcome: RoundOutcome) -> bool:
    """Filters passed, in sync, and scalars verified: checked and matching, or not audited this
    round from a trusted miner (``validator.trust``)."""
    verified = outcome.verified is True or (outcome.verified is None and outcome.trusted)
    return outcome.filters_passed and verified and outcome.synced


def match_score(
    outcome: RoundOutcome, validation_loss: float, policy: MatchScorePolicy = MatchScorePolicy()
) -> float:
    """The miner's score in this round's match; -inf (ranked last) when it failed a gate.

    A missing or non-finite influence, or a non-positive ``validation_loss``, drops the influence
    term; an invalid loss measurement counts as failing.
    """
    if not passes_gates(outcome) or outcome.delta is None or not outcome.delta.valid:
        return -math.inf
    score = policy.random_weight * outcome.delta.random
    if math.isfinite(validation_loss) and validation_loss > 0.0:
        for influence in (outcome.influence, outcome.cascade):
            if influence is not None and math.isfinite(influence):
                score += policy.influence_weight * (-influence / validation_loss)
    return score


def outcome_score(outcome: RoundOutcome, rating: Rating) -> float:
    """The final score: ordinal x gates x max(0, indicator) x liveness."""
    return final_score(
        rating.ordinal,
        verified=outcome.filters_passed and outcome.verified is True,
        synced=outcome.synced,
        indicator_average=outcome.indicator_average,
        liveness=outcome.liveness,
    )


def gate_failure(outcome: RoundOutcome) -> str | None:
    """The first filter, verification or sync gate the outcome fails, or None."""
    if not outcome.filters_passed:
        return "failed fast filters"
    if outcome.verified is False:
        return "failed verification: recomputed scalars differ"
    if outcome.verified is None and not outcome.trusted:
        return "not audited this round and not yet trusted (probation)"
    if not outcome.synced:
        return "not synced to the certified model"
    return None


def explain(outcome: RoundOutcome, rating: Rating) -> str:
    """The first reason the score is zero, or "scored" when it is positive."""
    failed = gate_failure(outcome)
    if failed is not None:
        return failed
    if outcome.delta is not None and not outcome.delta.valid:
        return "loss measurement invalid (non-finite or non-positive loss)"
    if not outcome.indicator_average > 0.0:
        return "own-beats-random average <= 0"
    if not rating.ordinal > 0.0:
        return "rating ordinal <= 0"
    if not outcome.liveness > 0.0:
        return "absent too long"
    return "scored"
