"""The validator's decisions as a pure function of what it knows and the time.

Like the miner, a validator applies final bundles in order and catches up when it is behind the
clock. In the CERTIFY phase of each clock round EVERY validator scores the round its replica is
at (normally the clock's round, or an older one when the network fell behind), once — or
earlier, in the round's WORK phase, as soon as every expected miner's contribution is in
(the registered miners it heard from in the last few rounds: validator.service.pool). The
round's leader then certifies its own decision; every other validator reviews each candidate
certificate of that round against its own scoring and endorses or disputes it. A round nobody
made final passes to the next fallback leader in the next clock round, so history never stalls
for good.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from protocol.rounds import (
    DEFAULT_PATIENCE,
    Patience,
    Phase,
    RoundClock,
    RoundPhase,
    may_act,
    should_catch_up,
)


class ValidatorAction(enum.Enum):
    """What the validator does next."""

    WAIT = "wait"
    APPLY = "apply"
    CATCH_UP = "catch_up"
    SCORE = "score"
    REVIEW = "review"
    CERTIFY = "certify"


@dataclass(frozen=True)
class ValidatorView:
    """The facts a decision depends on."""

    at_round: int
    certified_in: int
    """The clock round in which this validator last certified (-1: never)."""
    next_bundle_ready: bool
    """A final bundle for `at_round` waits in the follower."""
    last_catch_up: float
    leads_current_round: bool
    """This validator is the leader of `at_round` during the current clock round."""
    finished: bool = False
    """The replica reached the configured last round: certify and follow nothing more."""
    scored: bool = False
    """This validator has scored `at_round` (its decision is kept)."""
    review_waiting: bool = False
    """A candidate certificate of `at_round` by another leader that it has not reviewed."""
    entered_at: float = -math.inf
    """When the replica reached `at_round` (-inf: at start-up)."""
    all_in: bool = False
    """Every expected miner's contribution to `at_round` is in the pool (one per miner and
    round is the most it may send), so the round may be scored before the work deadline."""


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
    if view.scored and view.review_waiting:
        return ValidatorAction.REVIEW  # a late candidate of its round: judge it at once
    if not may_act(view.at_round, view.last_catch_up, clock, now, patience):
        return ValidatorAction.WAIT
    if not view.scored:
        ready = _work_is_in(view, clock, current) or _closed_early(view, current)
        return ValidatorAction.SCORE if ready else ValidatorAction.WAIT
    if (
        # scored during the round's own WORK phase = closed early (the pool is taken by then)
        (current.phase is Phase.CERTIFY or view.at_round == current.round_index)
        and view.leads_current_round
        and view.certified_in < current.round_index
        and view.at_round <= current.round_index
    ):
        return ValidatorAction.CERTIFY
    return ValidatorAction.WAIT


def _work_is_in(view: ValidatorView, clock: RoundClock, current: RoundPhase) -> bool:
    """The miners had a work phase on the replica's model and it is over: the CERTIFY phase
    of a clock round whose work deadline came after the replica reached its round (a round
    reached after the deadline is worked on, and scored, in the next clock round)."""
    return (
        current.phase is Phase.CERTIFY
        and view.at_round <= current.round_index
        and view.entered_at < clock.work_deadline(current.round_index)
    )


def _closed_early(view: ValidatorView, current: RoundPhase) -> bool:
    """The WORK phase of the replica's own round with every registered miner already heard
    from: waiting for the deadline could add nothing, so scoring (and, for the leader,
    certifying) need not wait for it. Miners still start the next round at its clock start."""
    return (
        view.all_in
        and current.phase is Phase.WORK
        and view.at_round == current.round_index
    )
