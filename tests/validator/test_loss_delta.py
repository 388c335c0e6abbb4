import math

import pytest

from protocol.errors import ConfigError
from validator.loss_delta import (
    INDICATOR_ALPHA,
    LossDelta,
    LossMeasurement,
    loss_delta,
    own_beats_random,
    relative_improvement,
    update_indicator,
)


def test_relative_improvements() -> None:
    d = loss_delta(LossMeasurement(own_before=2.0, own_after=1.5, random_before=4.0,
                                   random_after=3.8))
    assert d.valid and d.own == 0.25 and d.random == pytest.approx(0.05)
    assert own_beats_random(d) == 1
    worse = loss_delta(LossMeasurement(2.0, 2.2, 2.0, 1.9))
    assert worse.own == pytest.approx(-0.1) and own_beats_random(worse) == -1


@pytest.mark.parametrize(
    ("before", "after"),
    [(0.0, 1.0), (-1.0, 0.5), (math.nan, 1.0), (1.0, math.inf), (math.inf, 1.0), (1.0, -0.1)],
)
def test_untrustworthy_losses_fail_without_crashing(before: float, after: float) -> None:
    assert relative_improvement(before, after) is None
    d = loss_delta(LossMeasurement(before, after, 2.0, 1.0))
    assert d == LossDelta(0.0, 0.0, False)
    assert own_beats_random(d) == -1


def test_equal_improvement_is_not_a_win() -> None:
    # a copied/generic update helps own and random data equally: indicator -1
    assert own_beats_random(LossDelta(own=0.1, random=0.1, valid=True)) == -1


def test_indicator_average() -> None:
    avg = 0.0
    for _ in range(3):
        avg = update_indicator(avg, 1)
    assert avg == pytest.approx(1 - (1 - INDICATOR_ALPHA) ** 3)
    assert avg > 0.48  # alpha 0.2: about half recognition after three wins
    assert update_indicator(math.nan, -1) == pytest.approx(-INDICATOR_ALPHA)
    for _ in range(200):
        avg = update_indicator(avg, -1)
    assert avg == pytest.approx(-1.0, abs=1e-9)
    with pytest.raises(ConfigError):
        update_indicator(0.0, 0)
    with pytest.raises(ConfigError):
        update_indicator(0.0, 1, alpha=0.0)
