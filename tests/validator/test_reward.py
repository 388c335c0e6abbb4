"""The reward rules, each on its own, with exact expected values.

    reward = max(0, value) x rating_factor x indicator_factor x clamp01(liveness)

and 0 unless every gate passes (filters, verification or trust, sync, a valid loss
measurement). The inputs are chosen so that every product is exact in binary64, so each
expectation is an exact number, not an approximation, and a changed factor, clamp or operator
cannot hide in a tolerance. Then what the pipeline does with the rewards: liveness decay and
the epoch's sharpened weights.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from protocol.errors import ConfigError
from validator.liveness import LivenessPolicy, Presence, liveness_factor
from validator.loss_delta import LossDelta
from validator.outcome import RoundOutcome
from validator.ratings import Rating
from validator.reward import (
    RewardPolicy,
    clamp01,
    explain_reward,
    indicator_factor,
    rating_factor,
    reward_score,
)
from validator.weights import PPB, WeightPolicy, epoch_weights, sharpen

VALID = LossDelta(own=0.25, random=0.125, valid=True)
INVALID = LossDelta(own=0.0, random=0.0, valid=False)
# ordinal = mu - 3 sigma = 5: rating factor 1/2 + 5/20 = 3/4
RATING = Rating(mu=11.0, sigma=2.0)
# every gate passes; indicator factor 1/2 + 1/4 = 3/4; present
PASSING = RoundOutcome(filters_passed=True, verified=True, synced=True, delta=VALID,
                       influence=None, indicator_average=0.25, liveness=1.0)


def outcome(**changes: object) -> RoundOutcome:
    return dataclasses.replace(PASSING, **changes)  # type: ignore[arg-type]


def ordinal(value: float) -> Rating:
    """A rating with the given ordinal (sigma 0)."""
    return Rating(mu=value, sigma=0.0)


# -- the policy -----------------------------------------------------------------------------


def test_policy_defaults() -> None:
    assert RewardPolicy() == RewardPolicy(rating_span=10.0, indicator_offset=0.5)


@pytest.mark.parametrize("span", [0.0, -1.0, math.nan, math.inf])
def test_rating_span_must_be_finite_and_positive(span: float) -> None:
    with pytest.raises(ConfigError):
        RewardPolicy(rating_span=span)


@pytest.mark.parametrize("offset", [-0.01, 1.01, math.nan])
def test_indicator_offset_must_lie_in_the_unit_interval(offset: float) -> None:
    with pytest.raises(ConfigError):
        RewardPolicy(indicator_offset=offset)


def test_policy_edges_are_valid() -> None:
    assert RewardPolicy(rating_span=1e-300, indicator_offset=0.0).indicator_offset == 0.0
    assert RewardPolicy(indicator_offset=1.0).indicator_offset == 1.0


# -- the clamps and the two standing factors ------------------------------------------------


@pytest.mark.parametrize(("value", "clamped"), [
    (-1.0, 0.0), (-0.0, 0.0), (0.0, 0.0), (0.375, 0.375), (1.0, 1.0), (1.5, 1.0),
    (math.nan, 0.0), (math.inf, 0.0), (-math.inf, 0.0),
])
def test_clamp01(value: float, clamped: float) -> None:
    assert clamp01(value) == clamped


@pytest.mark.parametrize(("rating_ordinal", "factor"), [
    (0.0, 0.5),  # a newcomer
    (5.0, 0.75), (-2.5, 0.375),
    (10.0, 1.0), (25.0, 1.0),  # saturated: the drift above the span is capped away
    (-10.0, 0.0), (-40.0, 0.0),  # keeps ranking last
])
def test_rating_factor(rating_ordinal: float, factor: float) -> None:
    assert rating_factor(ordinal(rating_ordinal)) == factor


def test_rating_factor_of_a_default_rating_and_another_span() -> None:
    assert rating_factor(Rating(25.0, 25.0 / 3.0)) == 0.5  # openskill's newcomer: ordinal 0
    assert rating_factor(ordinal(1.0), RewardPolicy(rating_span=4.0)) == 0.625


@pytest.mark.parametrize(("average", "factor"), [
    (0.0, 0.5),  # a newcomer
    (0.25, 0.75), (-0.25, 0.25),
    (0.5, 1.0), (0.6, 1.0),  # an honest miner winning most rounds
    (-0.5, 0.0), (-1.0, 0.0),  # never beats random
    (math.nan, 0.0), (math.inf, 0.0), (-math.inf, 0.0),
])
def test_indicator_factor(average: float, factor: float) -> None:
    assert indicator_factor(average) == factor


def test_indicator_factor_with_another_offset() -> None:
    assert indicator_factor(0.5, RewardPolicy(indicator_offset=0.25)) == 0.75
    assert indicator_factor(0.0, RewardPolicy(indicator_offset=0.0)) == 0.0


# -- the reward -----------------------------------------------------------------------------


def test_reward_of_a_miner_passing_every_gate() -> None:
    # 0.5 x 3/4 x 3/4 x 1
    assert reward_score(PASSING, 0.5, RATING) == 0.28125


@pytest.mark.parametrize(("changes", "value", "rating", "reward"), [
    ({}, 2.0, ordinal(10.0), 1.5),  # value x 1 x 3/4: the value carries the magnitude
    ({"liveness": 0.5}, 0.5, RATING, 0.140625),
    ({"liveness": 0.75**3}, 1.0, ordinal(10.0), 0.31640625),  # three missed rounds
    ({"liveness": 1.5}, 0.5, RATING, 0.28125),  # liveness clamped to 1
    ({"indicator_average": 0.5}, 0.5, RATING, 0.375),
    ({"indicator_average": 0.9}, 0.5, ordinal(30.0), 0.5),  # both factors clamped to 1
    ({"verified": None, "trusted": True}, 0.5, RATING, 0.28125),  # trusted, not audited
])
def test_reward_factors(changes: dict[str, object], value: float, rating: Rating,
                        reward: float) -> None:
    assert reward_score(outcome(**changes), value, rating) == reward


@pytest.mark.parametrize("changes", [
    {"filters_passed": False},
    {"verified": False},
    {"verified": False, "trusted": True},  # trust never excuses a failed audit
    {"verified": None},  # not audited and still on probation
    {"synced": False},
    {"delta": None},
    {"delta": INVALID},
], ids=["filters", "verification", "failed-audit-trusted", "probation", "sync", "no-delta",
        "invalid-delta"])
def test_a_failed_gate_pays_nothing(changes: dict[str, object]) -> None:
    # everything else would pay the most: value 1, both factors 1, present
    best = outcome(indicator_average=0.9, **changes)
    assert reward_score(best, 1.0, ordinal(30.0)) == 0.0


@pytest.mark.parametrize(("changes", "value", "rating"), [
    ({}, 0.0, RATING), ({}, -0.5, RATING), ({}, math.nan, RATING), ({}, math.inf, RATING),
    ({}, 0.5, ordinal(-10.0)),  # rating factor 0
    ({"indicator_average": -0.5}, 0.5, RATING),  # indicator factor 0
    ({"liveness": 0.0}, 0.5, RATING), ({"liveness": -1.0}, 0.5, RATING),
    ({"liveness": math.nan}, 0.5, RATING),
    # negative x negative (Templar PR #108): a losing rating and a negative indicator
    ({"indicator_average": -0.9}, -0.3, ordinal(-24.0)),
])
def test_a_zero_factor_pays_nothing(changes: dict[str, object], value: float,
                                   rating: Rating) -> None:
    assert reward_score(outcome(**changes), value, rating) == 0.0


def test_a_custom_policy_changes_both_factors() -> None:
    policy = RewardPolicy(rating_span=4.0, indicator_offset=0.25)
    # 1 x (1/2 + 1/8) x (1/4 + 1/4) x 1
    assert reward_score(PASSING, 1.0, ordinal(1.0), policy) == 0.3125


# -- the explanation ------------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "value", "rating", "text"), [
    ({"filters_passed": False}, 0.5, RATING, "failed fast filters"),
    ({"verified": False}, 0.5, RATING, "failed verification: recomputed scalars differ"),
    ({"verified": None}, 0.5, RATING,
     "not audited this round and not yet trusted (probation)"),
    ({"synced": False}, 0.5, RATING, "not synced to the certified model"),
    ({"delta": None}, 0.5, RATING,
     "loss measurement invalid (non-finite or non-positive loss)"),
    ({"delta": INVALID}, 0.5, RATING,
     "loss measurement invalid (non-finite or non-positive loss)"),
    ({}, 0.0, RATING, "no measured improvement (value 0)"),
    ({}, -0.012345, RATING, "no measured improvement (value -0.0123)"),
    ({}, math.nan, RATING, "no measured improvement (value nan)"),
    ({}, 0.5, ordinal(-12.5), "rating ordinal -12.50 too low"),
    ({"indicator_average": -0.75}, 0.5, RATING, "own-beats-random average -0.75 too low"),
    ({"indicator_average": math.nan}, 0.5, RATING, "own-beats-random average nan too low"),
    ({"liveness": 0.0}, 0.5, RATING, "absent too long"),
    ({"liveness": -2.0}, 0.5, RATING, "absent too long"),
    ({}, 0.5, RATING,
     "scored (audited): value 0.5 x rating 0.75 x indicator 0.75 x liveness 1.00"),
    ({"verified": None, "trusted": True, "liveness": 0.5625}, 1234.5678, ordinal(10.0),
     "scored (trusted, not audited): value 1.23e+03 x rating 1.00 x indicator 0.75"
     " x liveness 0.56"),
    ({"liveness": 3.0}, 0.5, RATING,
     "scored (audited): value 0.5 x rating 0.75 x indicator 0.75 x liveness 1.00"),
])
def test_explain_reward(changes: dict[str, object], value: float, rating: Rating,
                        text: str) -> None:
    assert explain_reward(outcome(**changes), value, rating) == text


def test_the_first_reason_wins() -> None:
    # several gates and factors fail: the explanation names the earliest in the rule's order
    everything_wrong = outcome(filters_passed=False, synced=False, delta=None, liveness=0.0,
                               indicator_average=-1.0)
    assert explain_reward(everything_wrong, -1.0, ordinal(-50.0)) == "failed fast filters"
    assert explain_reward(outcome(synced=False, delta=None), -1.0, RATING) == (
        "not synced to the certified model")
    assert explain_reward(outcome(indicator_average=-1.0), 0.5, ordinal(-50.0)) == (
        "rating ordinal -50.00 too low")
    assert explain_reward(outcome(indicator_average=-1.0, liveness=0.0), 0.5, RATING) == (
        "own-beats-random average -1.00 too low")


def test_the_explanation_uses_the_policy() -> None:
    policy = RewardPolicy(rating_span=4.0, indicator_offset=0.25)
    assert explain_reward(PASSING, 1.0, ordinal(1.0), policy) == (
        "scored (audited): value 1 x rating 0.62 x indicator 0.50 x liveness 1.00")
    assert explain_reward(outcome(indicator_average=-0.25), 1.0, ordinal(1.0), policy) == (
        "own-beats-random average -0.25 too low")


@pytest.mark.parametrize("changes", [
    {}, {"verified": None}, {"verified": None, "trusted": True}, {"synced": False},
    {"liveness": 0.0}, {"indicator_average": -0.5}, {"delta": INVALID},
])
@pytest.mark.parametrize(("value", "rating_ordinal"), [(0.5, 5.0), (0.0, 5.0), (0.5, -10.0)])
def test_the_explanation_says_scored_exactly_when_there_is_a_reward(
        changes: dict[str, object], value: float, rating_ordinal: float) -> None:
    o = outcome(**changes)
    rating = ordinal(rating_ordinal)
    assert explain_reward(o, value, rating).startswith("scored") == (
        reward_score(o, value, rating) > 0.0)


# -- liveness and the epoch's weights -------------------------------------------------------


@pytest.mark.parametrize(("last_seen", "round_index", "factor"), [
    (10, 10, 1.0), (10, 11, 1.0),  # seen this round or the one before
    (10, 12, 0.75), (10, 13, 0.5625), (10, 14, 0.421875),
    (10, 26, 0.75**15),  # 15 missed rounds: the last one before the reset
    (10, 27, 0.0),  # 16 missed: reset
])
def test_liveness_factor(last_seen: int, round_index: int, factor: float) -> None:
    assert liveness_factor(Presence(0, last_seen), round_index) == factor


def test_liveness_factor_of_another_policy_and_of_a_stranger() -> None:
    policy = LivenessPolicy(decay=0.5, reset_after=2)
    assert liveness_factor(Presence(0, 10), 12, policy) == 0.5
    assert liveness_factor(Presence(0, 10), 13, policy) == 0.0
    assert liveness_factor(None, 10) == 0.0


def test_sharpening_squares_the_rewards() -> None:
    # power 2: 3^2 : 1^2 : 2^2 over 14 (scaled by the largest first, then rounded in binary64);
    # non-positive and NaN rewards are dropped
    fractions = sharpen({"a": 0.75, "b": 0.25, "c": 0.5, "d": 0.0, "e": -1.0, "f": math.nan},
                        2.0)
    assert fractions == {"a": 0.6428571428571428, "b": 0.07142857142857142,
                         "c": 0.2857142857142857}
    assert sharpen({"a": 0.75, "b": 0.25}, 1.0) == {"a": 0.75, "b": 0.25}
    assert sharpen({"a": 0.0, "b": -2.0}, 2.0) == {}


def test_epoch_weights_from_rewards() -> None:
    # a round's rewards of three miners and a failed one, sharpened (power 2), in ppb
    rewards = {
        "a": reward_score(PASSING, 0.5, RATING),  # 0.28125
        "b": reward_score(outcome(liveness=0.5), 0.5, RATING),  # 0.140625
        "c": reward_score(PASSING, 0.25, ordinal(10.0)),  # 0.1875
        "d": reward_score(outcome(synced=False), 0.5, RATING),  # 0
    }
    assert rewards == {"a": 0.28125, "b": 0.140625, "c": 0.1875, "d": 0.0}
    # 0.28125 : 0.140625 : 0.1875 = 6 : 3 : 4, squared 36 : 9 : 16 over 61; the two units
    # the floors leave go to the largest remainders (c: .97, b: .61)
    assert epoch_weights(rewards) == {"a": 590_163_934, "b": 147_540_984, "c": 262_295_082}
    # unsharpened: 6 : 3 : 4 over 13 (remainders b: .77, c: .69, a: .54)
    assert epoch_weights(rewards, WeightPolicy(power=1.0)) == {
        "a": 461_538_461, "b": 230_769_231, "c": 307_692_308}
    assert sum(epoch_weights(rewards).values()) == PPB
