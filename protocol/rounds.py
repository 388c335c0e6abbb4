"""The round schedule: which round and phase a moment belongs to. Pure; time is an argument.

Round r occupies [genesis + r * length, genesis + (r + 1) * length). Its first part is the WORK
phase, in which miners compute on the certified model of round r and publish; contributions
must arrive by the work deadline. The rest is the CERTIFY phase: the round's leader certifies
what arrived, and every node applies the certificate before round r + 1 begins (round r + 1's
seeds derive from the model round r produces). Before genesis everything waits.

The chain's epochs use the same genesis and round length: epoch e holds rounds
[e * epoch_length, (e + 1) * epoch_length).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from protocol.errors import ConfigError


class Phase(enum.Enum):
    """Where in its round a moment lies."""

    BEFORE_GENESIS = "before_genesis"
    WORK = "work"
    CERTIFY = "certify"


@dataclass(frozen=True)
class RoundPhase:
    """The round of a moment, its phase, and when that phase ends (seconds, same clock)."""

    round_index: int
    phase: Phase
    deadline: float


@dataclass(frozen=True)
class RoundClock:
    """The schedule of one network: genesis time, round length and the work share of a round."""

    genesis_time: float
    round_length: float
    work_fraction: float = 0.6

    def __post_init__(self) -> None:
        if not (math.isfinite(self.genesis_time) and math.isfinite(self.round_length)):
            raise ConfigError("genesis time and round length must be finite")
        if self.round_length <= 0:
            raise ConfigError(f"round length must be positive, got {self.round_length}")
        if not 0.0 < self.work_fraction < 1.0:
            raise ConfigError(f"work fraction must lie in (0, 1), got {self.work_fraction}")

    def round_start(self, round_index: int) -> float:
        """When round `round_index` begins."""
        return self.genesis_time + round_index * self.round_length

    def work_deadline(self, round_index: int) -> float:
        """When contributions to round `round_index` are due."""
        return self.round_start(round_index) + self.work_fraction * self.round_length

    def round_end(self, round_index: int) -> float:
        """When round `round_index` ends (and the next begins)."""
        return self.round_start(round_index + 1)

    def phase(self, now: float) -> RoundPhase:
        """The round and phase of the moment `now`."""
        return phase(now, self.genesis_time, self.round_length, self.work_fraction)


def phase(
    now: float, genesis_time: float, round_length: float, work_fraction: float = 0.6
) -> RoundPhase:
    """(round, phase, deadline) of `now` under the schedule (see the module docstring)."""
    if now < genesis_time:
        return RoundPhase(0, Phase.BEFORE_GENESIS, genesis_time)
    round_index = int((now - genesis_time) // round_length)
    start = genesis_time + round_index * round_length
    # float division can land a hair before the boundary; never report a past round
    if now >= start + round_length:
        round_index += 1
        start += round_length
    work_end = start + work_fraction * round_length
    if now < work_end:
        return RoundPhase(round_index, Phase.WORK, work_end)
    return RoundPhase(round_index, Phase.CERTIFY, start + round_length)


def epoch_of(round_index: int, epoch_length: int) -> int:
    """The epoch a round belongs to."""
    if epoch_length < 1:
        raise ConfigError(f"epoch length must be >= 1, got {epoch_length}")
    return round_index // epoch_length


def last_round_of_epoch(epoch: int, epoch_length: int) -> int:
    """The final round of `epoch`."""
    return (epoch + 1) * epoch_length - 1


@dataclass(frozen=True)
class Patience:
    """How long to wait for a late bundle before asking peers, as a fraction of a round."""

    catch_up_grace: float = 0.2


DEFAULT_PATIENCE = Patience()


def catch_up_point(clock: RoundClock, clock_round: int, patience: Patience) -> float:
    """When, in `clock_round`, a node still behind asks its peers for the log."""
    return clock.round_start(clock_round) + patience.catch_up_grace * clock.round_length


def should_catch_up(at_round: int, last_catch_up: float, clock: RoundClock, now: float,
                    patience: Patience) -> bool:
    """Behind the clock, past the grace point, and not yet asked in this clock round."""
    current = clock.phase(now)
    if current.phase is Phase.BEFORE_GENESIS or current.round_index <= at_round:
        return False
    point = catch_up_point(clock, current.round_index, patience)
    return now >= point and last_catch_up < point


def may_act(at_round: int, last_catch_up: float, clock: RoundClock, now: float,
            patience: Patience) -> bool:
    """Whether the replica may be treated as the network's head in this clock round."""
    current = clock.phase(now)
    if current.round_index <= at_round:
        return True
    return last_catch_up >= catch_up_point(clock, current.round_index, patience)


def wake_time(clock: RoundClock, now: float, patience: Patience | None = None) -> float:
    """When a node's next decision may change without a new event."""
    patience = patience or Patience()
    current = clock.phase(now)
    candidates = [current.deadline]
    if current.phase is not Phase.BEFORE_GENESIS:
        point = catch_up_point(clock, current.round_index, patience)
        if point > now:
            candidates.append(point)
    return min(candidates)
