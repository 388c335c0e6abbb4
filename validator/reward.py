"""A miner's reward score for one round: measured value, scaled by capped standing factors.

    reward = max(0, value) x rating_factor x indicator_factor x liveness   (0 unless gates pass)

* ``value`` is the round's match score (``validator.outcome.match_score``): relative loss
  improvement on validator-chosen random data plus DICE influence (one hop and cascade) on the
  validation loss. It carries the *magnitude*: money follows measured improvement.
* ``rating_factor = clamp(1/2 + ordinal / (2 · rating_span), 0, 1)``. Templar pays
  ``ordinal x gates``; but a Plackett-Luce ordinal keeps climbing for a miner that keeps
  winning (about +1.8 per round at beta 7), so after a few dozen rounds established miners sit
  at ordinals of 30-60 while a newcomer starts at 0 and needs as many rounds to catch up: pay
  by ordinal and a new honest miner is not recognised for tens of rounds. Here the rating only
  *gates and orders*: a newcomer (ordinal 0) starts at factor 1/2, a miner that wins a few
  matches saturates at 1 (the drift above ``rating_span`` is capped away), and one that keeps
  ranking last falls to 0 after a few rounds. ``rating_span = 10``: about five won matches.
* ``indicator_factor = clamp(1/2 + average, 0, 1)`` of the own-beats-random moving average
  (alpha 0.2): 1/2 for a newcomer, 1 for an honest miner winning most rounds (stationary mean
  0.6), 1/2 for a copier at chance, 0 for one that never beats random.

Both factors are clamped to [0, 1] before multiplying and the value is clamped at 0, so no
product of negatives can become a positive reward (Templar PR #108) and no penalty factor
can raise a negative score (issue #45).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from protocol.errors import ConfigError
from validator.gates import nonnegative
from validator.outcome import RoundOutcome, gate_failure, passes_gates
from validator.ratings import Rating


@dataclass(frozen=True)
class RewardPolicy:
    """Scales of the two standing factors (see the module docstring)."""

    rating_span: float = 10.0
    indicator_offset: float = 0.5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rating_span) and self.rating_span > 0.0):
            raise ConfigError(f"rating_span must be positive, got {self.rating_span}")
        if not 0.0 <= self.indicator_offset <= 1.0:
            raise ConfigError(f"indicator_offset must lie in [0, 1], got {self.indicator_offset}")


def clamp01(value: float) -> float:
    """``value`` clamped to [0, 1]; NaN counts as 0."""
    return min(1.0, nonnegative(value))


def rating_factor(rating: Rating, policy: RewardPolicy = RewardPolicy()) -> float:
    """1/2 at the newcomer's ordinal 0, 1 from ``+rating_span``, 0 from ``-rating_span``."""
    return clamp01(0.5 + rating.ordinal / (2.0 * policy.rating_span))


def indicator_factor(average: float, policy: RewardPolicy = RewardPolicy()) -> float:
    """``offset + average`` clamped to [0, 1]."""
    return clamp01(policy.indicator_offset + average) if math.isfinite(average) else 0.0


def reward_score(
    outcome: RoundOutcome, value: float, rating: Rating, policy: RewardPolicy = RewardPolicy()
) -> float:
    """The round's reward score of one miner; 0 unless every gate passes."""
    if not passes_gates(outcome) or outcome.delta is None or not outcome.delta.valid:
        return 0.0
    return (
        nonnegative(value)
        * rating_factor(rating, policy)
        * indicator_factor(outcome.indicator_average, policy)
        * clamp01(outcome.liveness)
    )


def explain_reward(
    outcome: RoundOutcome, value: float, rating: Rating, policy: RewardPolicy = RewardPolicy()
) -> str:
    """Why the reward is what it is: the first factor that zeroes it, or the numbers."""
    failed = gate_failure(outcome)
    if failed is not None:
        return failed
    if outcome.delta is None or not outcome.delta.valid:
        return "loss measurement invalid (non-finite or non-positive loss)"
    if not value > 0.0:
        return f"no measured improvement (value {value:.3g})"
    rf = rating_factor(rating, policy)
    inf = indicator_factor(outcome.indicator_average, policy)
    if rf == 0.0:
        return f"rating ordinal {rating.ordinal:.2f} too low"
    if inf == 0.0:
        return f"own-beats-random average {outcome.indicator_average:.2f} too low"
    if not outcome.liveness > 0.0:
        return "absent too long"
    audited = "audited" if outcome.verified else "trusted, not audited"
    return (f"scored ({audited}): value {value:.3g} x rating {rf:.2f} x indicator {inf:.2f}"
            f" x liveness {clamp01(outcome.liveness):.2f}")
