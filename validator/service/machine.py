"""The validator's decisions as a pure function of what it knows and the time.

Like the miner, a validator applies certified bundles in order and catches up when it is behind
the clock. In the CERTIFY phase of each clock round, the round's leader certifies the round its
replica is at: normally the clock's round, or an older one when the network fell behind (a
round nobody certified is certified later, so the history never stalls for good).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocol.rounds import DEFAULT_PATIENCE, Patience, Phase, RoundClock, may_act, should_catch_up


class ValidatorAction(enum.Enum):
    """What the validator does next."""

    WAIT = "wait"
    APPLY = "apply"
    CATCH_UP = "catch_up"
    CERTIFY = "certify"


@dataclass(frozen=True)
class ValidatorView:
    """The facts a decision depends on."""

    at_round: int
    certified_in: int
    """The clock round in which this validator last certified (-1: never)."""
    next_bundle_ready: bool
    last_catch_up: float
    leads_current_round: bool
    """This validator is the leader of the current clock round."""
    finished: bool = False
    """The replica reached the configured last round: certify and follow nothing more."""


def next_action(
    view: ValidatorView, clock: RoundClock, now: float, patience: Patience = DEFAULT_PATIENCE
) -> ValidatorAction:
    """The validator's next step (see ValidatorAction)."""
    if view.next_bundle_ready:
        return ValidatorAction.APPLY
    current = clock.phase(now)
    if current.phase is Phase.BEFORE_GENESIS or view.finished:
        return ValidatorAction.WAIT
    if should_catch_up(view.at_round, view.last_catch_up, clock, now, patience):
        return ValidatorAction.CATCH_UP
    if (
        current.phase is Phase.CERTIFY
        and view.leads_current_round
        and view.certified_in < current.round_index
        and view.at_round <= current.round_index
        and may_act(view.at_round, view.last_catch_up, clock, now, patience)
    ):
        return ValidatorAction.CERTIFY
    return ValidatorAction.WAIT
