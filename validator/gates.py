"""The final score: a rating gated by pass/fail checks, and the clamps that keep it honest.

Two exploits Templar suffered shape every function here:

* negative x negative: a negative rating times a negative indicator average gave a large
  *positive* score (PR #108). Every factor is clamped to [0, inf) *before* multiplying.
* slashing that raises a weight: multiplying a negative score by a penalty < 1 moved it towards
  zero, i.e. up (issue #45). Penalties only ever multiply a clamped, non-negative score.

NaN and infinities count as failing (0), never as a crash or a large number.
"""

from __future__ import annotations

import math

from protocol.errors import ConfigError


def nonnegative(value: float) -> float:
    """``value`` if it is finite and positive, else 0.0 (NaN and infinities included)."""
    if math.isfinite(value) and value > 0.0:
        return float(value)
    return 0.0


def slash(score: float, factor: float) -> float:
    """``score`` after a penalty ``factor`` in [0, 1]; never larger than max(0, score)."""
    if not (math.isfinite(factor) and 0.0 <= factor <= 1.0):
        raise ConfigError(f"a slashing factor must lie in [0, 1], got {factor}")
    return nonnegative(score) * factor


def final_score(
    ordinal: float,
    *,
    verified: bool,
    synced: bool,
    indicator_average: float,
    liveness: float = 1.0,
) -> float:
    """ordinal x gates: 0 unless verified and synced; scaled by max(0, indicator) and liveness.

    ``ordinal`` is the OpenSkill mu - 3 sigma; ``indicator_average`` the moving average of the
    own-beats-random indicator (in [-1, 1]); ``liveness`` the absence decay in [0, 1].
    """
    if not (verified and synced):
        return 0.0
    # Both factors are fractions; capping them at 1 also keeps the product finite.
    indicator = min(1.0, nonnegative(indicator_average))
    live = min(1.0, nonnegative(liveness))
    return nonnegative(ordinal) * indicator * live
