"""From final scores to the epoch weight vector a validator puts on chain.

Only miners with a finite, positive final score are paid. Scores are sharpened
(w_i proportional to s_i^power, Templar's power normalisation; power 2 as during most of its
1.2B run), optionally only the top ``max_paid`` are kept (the top-G a certificate can afford),
and an optional ``burn_fraction`` goes to a burn/reserve recipient. The result is integer parts
per billion that sum to exactly 1e9, the unit the chain contract expects.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from protocol.errors import ConfigError
from validator.gates import nonnegative

PPB = 1_000_000_000


@dataclass(frozen=True)
class WeightPolicy:
    """How scores become weights."""

    power: float = 2.0
    burn_fraction: float = 0.0
    burn_recipient: str | None = None
    max_paid: int | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.power) and self.power > 0.0):
            raise ConfigError(f"sharpening power must be positive, got {self.power}")
        if not 0.0 <= self.burn_fraction <= 1.0:
            raise ConfigError(f"burn fraction must lie in [0, 1], got {self.burn_fraction}")
        if self.burn_fraction > 0.0 and self.burn_recipient is None:
            raise ConfigError("a burn fraction needs a burn recipient")
        if self.max_paid is not None and self.max_paid < 1:
            raise ConfigError(f"max_paid must be >= 1, got {self.max_paid}")


def paid_miners(scores: Mapping[str, float], max_paid: int | None = None) -> list[str]:
    """Miners with a positive score, best first (ties by key), cut to ``max_paid``."""
    positive = [k for k, s in scores.items() if nonnegative(s) > 0.0]
    positive.sort(key=lambda k: (-scores[k], k))
    return positive if max_paid is None else positive[:max_paid]


def sharpen(scores: Mapping[str, float], power: float) -> dict[str, float]:
    """Fractions s_i^power / sum s^power over positive scores; {} when none is positive.

    Scores are divided by their maximum first so that large ordinals cannot overflow.
    """
    positive = {k: nonnegative(s) for k, s in scores.items() if nonnegative(s) > 0.0}
    if not positive:
        return {}
    top = max(positive.values())
    powered = {k: (s / top) ** power for k, s in positive.items()}
    total = sum(powered[k] for k in sorted(powered))
    return {k: v / total for k, v in powered.items()}


def to_parts(fractions: Mapping[str, float], units: int) -> dict[str, int]:
    """Split ``units`` in proportion to ``fractions`` exactly (largest remainder, ties by key).

    The parts sum to exactly ``units``; a larger fraction never gets fewer units.
    """
    if units < 0:
        raise ConfigError(f"units must be >= 0, got {units}")
    clean = {k: nonnegative(f) for k, f in fractions.items()}
    total = sum(clean[k] for k in sorted(clean))
    if total <= 0.0:
        if units and clean:
            raise ConfigError("cannot split units over all-zero fractions")
        return dict.fromkeys(clean, 0)
    exact = {k: clean[k] / total * units for k in clean}
    parts = {k: min(units, math.floor(v)) for k, v in exact.items()}
    leftover = units - sum(parts.values())
    order = sorted(clean, key=lambda k: (-(exact[k] - parts[k]), -clean[k], k))
    i = 0
    while leftover > 0:
        parts[order[i % len(order)]] += 1
        leftover -= 1
        i += 1
    return parts


def epoch_weights(scores: Mapping[str, float], policy: WeightPolicy = WeightPolicy()) -> dict[
    str, int
]:
    """The weight vector in parts per billion, summing to exactly 1e9.

    Miners without a positive score are absent (weight 0). The burn recipient gets
    round(burn_fraction * 1e9), or everything when no miner earned anything. Returns {} when
    nothing is positive and there is no burn recipient: there is no vector to submit.
    """
    paid = paid_miners(scores, policy.max_paid)
    fractions = sharpen({k: scores[k] for k in paid}, policy.power)
    if policy.burn_recipient is None:
        return to_parts(fractions, PPB) if fractions else {}
    if not fractions:
        return {policy.burn_recipient: PPB}
    burned = round(policy.burn_fraction * PPB)
    weights = to_parts(fractions, PPB - burned)
    weights[policy.burn_recipient] = weights.get(policy.burn_recipient, 0) + burned
    return weights
