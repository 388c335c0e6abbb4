"""The miner's decisions as a pure function of what it knows and the time.

The service (node.service.miner) gathers a `MinerView`, asks `next_action`, carries the
action out, and asks again; nothing here reads a clock or touches the network.

Rounds of the clock and rounds of the certified history normally coincide: the bundle of round
r arrives during round r and the miner works on round r + 1 when it begins. When the replica is
behind the clock (a missed bundle, a restart, or a round nobody certified), the miner first asks
its peers for the log, once per clock round after a grace period; if they have nothing newer
the network itself is behind, and the miner works on the round its replica is at.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocol.rounds import DEFAULT_PATIENCE, Patience, Phase, RoundClock, may_act, should_catch_up


class MinerAction(enum.Enum):
    """What the miner does next."""

    WAIT = "wait"
    APPLY = "apply"
    WORK = "work"
    CATCH_UP = "catch_up"


@dataclass(frozen=True)
class MinerView:
    """The facts a decision depends on."""

    at_round: int
    """The round whose certified model the replica holds (the next one to work on)."""
    published_in: int
    """The clock round in which this miner last worked (-1: never)."""
    next_bundle_ready: bool
    """A final bundle of `at_round` on the replica's model has arrived and waits to be applied
    (runtime.follower.Follower.ready)."""
    last_catch_up: float
    """When the last catch-up attempt ended (-inf: never)."""
    finished: bool = False
    """The replica reached the configured last round: follow nothing more, do nothing more."""


def next_action(
    view: MinerView, clock: RoundClock, now: float, patience: Patience = DEFAULT_PATIENCE
) -> MinerAction:
    """The miner's next step (see MinerAction)."""
    if view.next_bundle_ready:
        return MinerAction.APPLY
    current = clock.phase(now)
    if current.phase is Phase.BEFORE_GENESIS or view.finished:
        return MinerAction.WAIT
    if should_catch_up(view.at_round, view.last_catch_up, clock, now, patience):
        return MinerAction.CATCH_UP
    if (
        current.phase is Phase.WORK
        and view.published_in < current.round_index
        and view.at_round <= current.round_index
        and may_act(view.at_round, view.last_catch_up, clock, now, patience)
    ):
        return MinerAction.WORK
    return MinerAction.WAIT
