"""The round schedule and the pure decisions of miners and validators."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from node.service.miner_machine import MinerAction, MinerView, next_action
from protocol.rounds import Patience, Phase, RoundClock, epoch_of, phase, wake_time
from validator.service.validator_machine import ValidatorAction, ValidatorView
from validator.service.validator_machine import next_action as validator_action

CLOCK = RoundClock(genesis_time=1000.0, round_length=4.0, work_fraction=0.5)


def test_phases_of_a_round() -> None:
    assert CLOCK.phase(999.0).phase is Phase.BEFORE_GENESIS
    assert CLOCK.phase(1000.0) == phase(1000.0, 1000.0, 4.0, 0.5)
    assert CLOCK.phase(1000.0).phase is Phase.WORK and CLOCK.phase(1000.0).deadline == 1002.0
    assert CLOCK.phase(1002.0).phase is Phase.CERTIFY and CLOCK.phase(1002.0).deadline == 1004.0
    assert CLOCK.phase(1004.0).round_index == 1
    assert epoch_of(9, 5) == 1


@given(st.floats(min_value=1000.0, max_value=1e9, allow_nan=False))
def test_a_moment_lies_inside_its_round(now: float) -> None:
    current = CLOCK.phase(now)
    assert CLOCK.round_start(current.round_index) <= now < CLOCK.round_end(current.round_index)
    assert now < current.deadline <= CLOCK.round_end(current.round_index)
    assert wake_time(CLOCK, now) > now


def _miner(at: int, published_in: int = -1, ready: bool = False,
           last_catch_up: float = -math.inf, finished: bool = False) -> MinerView:
    return MinerView(at, published_in, ready, last_catch_up, finished)


def test_miner_works_once_per_round_on_the_current_model() -> None:
    assert next_action(_miner(0), CLOCK, 1000.5) is MinerAction.WORK
    assert next_action(_miner(0, published_in=0), CLOCK, 1000.5) is MinerAction.WAIT
    assert next_action(_miner(0), CLOCK, 1002.5) is MinerAction.WAIT  # deadline passed
    assert next_action(_miner(0, ready=True), CLOCK, 1002.5) is MinerAction.APPLY
    assert next_action(_miner(0), CLOCK, 999.0) is MinerAction.WAIT
    assert next_action(_miner(5, finished=True), CLOCK, 1020.5) is MinerAction.WAIT


def test_miner_behind_asks_peers_after_the_grace_then_works_on_its_round() -> None:
    grace = Patience(0.2)
    assert next_action(_miner(0), CLOCK, 1004.3, grace) is MinerAction.WAIT  # bundle may come
    assert next_action(_miner(0), CLOCK, 1004.9, grace) is MinerAction.CATCH_UP
    # peers had nothing newer: the network is behind, so work on the replica's round
    assert next_action(_miner(0, last_catch_up=1005.0), CLOCK, 1005.1, grace) is MinerAction.WORK


def _validator(leads: bool = True, certified_in: int = -1, ready: bool = False,
               scored: bool = True, review_waiting: bool = False) -> ValidatorView:
    return ValidatorView(at_round=0, certified_in=certified_in, next_bundle_ready=ready,
                         last_catch_up=-math.inf, leads_current_round=leads, scored=scored,
                         review_waiting=review_waiting)


def test_every_validator_scores_then_only_the_leader_certifies() -> None:
    assert validator_action(_validator(scored=False), CLOCK, 1000.5) is ValidatorAction.WAIT
    assert validator_action(_validator(scored=False), CLOCK, 1002.5) is ValidatorAction.SCORE
    assert validator_action(_validator(leads=False, scored=False), CLOCK,
                            1002.5) is ValidatorAction.SCORE
    # scored during its own WORK phase means every miner was in (early close): certify now
    assert validator_action(_validator(), CLOCK, 1000.5) is ValidatorAction.CERTIFY
    assert validator_action(_validator(), CLOCK, 1002.5) is ValidatorAction.CERTIFY
    assert validator_action(_validator(leads=False), CLOCK, 1002.5) is ValidatorAction.WAIT
    assert validator_action(_validator(certified_in=0), CLOCK, 1002.5) is ValidatorAction.WAIT


def test_validators_review_candidates_and_apply_only_final_rounds() -> None:
    reviewer = _validator(leads=False, review_waiting=True)
    assert validator_action(reviewer, CLOCK, 1002.5) is ValidatorAction.REVIEW
    # nothing to judge before its own scoring exists
    unscored = _validator(leads=False, scored=False, review_waiting=True)
    assert validator_action(unscored, CLOCK, 1002.5) is ValidatorAction.SCORE
    # `ready` is Follower.ready(): a FINAL candidate on the replica's model
    assert validator_action(_validator(ready=True), CLOCK, 1002.5) is ValidatorAction.APPLY
    assert next_action(_miner(0, ready=False), CLOCK, 1002.5) is MinerAction.WAIT
