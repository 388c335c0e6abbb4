"""Liveness: how a miner's standing decays while it is absent, and when it is forgotten.

Pure state transitions: the caller passes the round number in, nothing reads a clock.

Constants (``LivenessPolicy`` defaults) and why:

* ``decay = 0.75`` per missed round, as Templar's validator. A miner that misses one round keeps
  75 % of its score (a dropped message or a restart costs little); after 5 missed rounds it keeps
  ~24 %, so nobody is paid for long after leaving.
* ``reset_after = 16`` missed rounds in a row: at that point the decay factor is
  0.75**16 ~ 1.0 %, so the standing carries no value anyway. Resetting there (rating, indicator
  average) means a returning identity re-earns its place instead of coasting on a stale rating,
  and the validator's state for departed miners stays bounded. Templar used 25 windows (90 s
  each) and later 3 (25 min each); 16 sits between and is tied to the decay, not to wall time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from protocol.errors import ConfigError
from validator.gates import nonnegative


@dataclass(frozen=True)
class LivenessPolicy:
    """Decay per missed round and the absence after which a miner is reset."""

    decay: float = 0.75
    reset_after: int = 16

    def __post_init__(self) -> None:
        if not 0.0 <= self.decay <= 1.0:
            raise ConfigError(f"liveness decay must lie in [0, 1], got {self.decay}")
        if self.reset_after < 1:
            raise ConfigError(f"reset_after must be >= 1, got {self.reset_after}")


@dataclass(frozen=True)
class Presence:
    """When a miner was first and last seen with a valid contribution."""

    first_seen: int
    last_seen: int


def mark_seen(presence: Presence | None, round_index: int) -> Presence:
    """The presence after a valid contribution in ``round_index``.

    Rounds must not go backwards: an older round cannot refresh liveness.
    """
    if presence is None:
        return Presence(first_seen=round_index, last_seen=round_index)
    if round_index < presence.last_seen:
        raise ConfigError(f"round {round_index} is before last seen {presence.last_seen}")
    return replace(presence, last_seen=round_index)


def missed_rounds(presence: Presence | None, round_index: int) -> int:
    """Consecutive rounds missed before ``round_index`` (0 if seen in the previous round)."""
    if presence is None:
        return 0
    return max(0, round_index - presence.last_seen - 1)


def liveness_factor(
    presence: Presence | None, round_index: int, policy: LivenessPolicy = LivenessPolicy()
) -> float:
    """Multiplier in [0, 1] on a miner's score at ``round_index``.

    A miner seen in ``round_index`` itself or the round before gets 1. A never-seen miner gets 0;
    one absent long enough to be reset gets 0.
    """
    if presence is None:
        return 0.0
    if round_index <= presence.last_seen:
        return 1.0
    missed = missed_rounds(presence, round_index)
    if missed >= policy.reset_after:
        return 0.0
    return float(policy.decay**missed)


def needs_reset(
    presence: Presence | None, round_index: int, policy: LivenessPolicy = LivenessPolicy()
) -> bool:
    """True when the miner has been absent ``reset_after`` rounds in a row: forget its standing."""
    return presence is not None and missed_rounds(presence, round_index) >= policy.reset_after


def decayed_score(score: float, missed: int, policy: LivenessPolicy = LivenessPolicy()) -> float:
    """``score`` after ``missed`` absent rounds.

    Only a non-negative score is decayed: a negative score multiplied by a factor < 1 would move
    towards zero, i.e. rise (Templar issue #45), so negatives are clamped to 0 first.
    """
    if missed < 0:
        raise ConfigError(f"missed rounds must be >= 0, got {missed}")
    if missed >= policy.reset_after:
        return 0.0
    return nonnegative(score) * policy.decay**missed
