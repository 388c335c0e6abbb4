import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import ConfigError
from validator.gates import final_score, nonnegative, slash

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
anything = st.floats(allow_nan=True, allow_infinity=True)


def test_negative_times_negative_is_not_positive() -> None:
    # Templar PR #108: negative ordinal x negative indicator average became a large weight
    assert final_score(-30.0, verified=True, synced=True, indicator_average=-0.9) == 0.0
    assert final_score(30.0, verified=True, synced=True, indicator_average=-0.9) == 0.0
    assert final_score(-30.0, verified=True, synced=True, indicator_average=0.9) == 0.0


def _score(ordinal: float = 10.0, *, verified: bool = True, synced: bool = True,
           indicator: float = 0.5, liveness: float = 1.0) -> float:
    return final_score(ordinal, verified=verified, synced=synced, indicator_average=indicator,
                       liveness=liveness)


def test_each_failed_gate_gives_exactly_zero() -> None:
    assert _score() == pytest.approx(5.0)
    assert _score(verified=False) == 0.0
    assert _score(synced=False) == 0.0
    assert _score(indicator=0.0) == 0.0
    assert _score(liveness=0.0) == 0.0
    assert _score(math.nan) == 0.0
    assert _score(indicator=math.inf) == 0.0
    assert _score(indicator=3.0) == pytest.approx(10.0)  # an average above 1 is capped


@given(finite, st.floats(min_value=0.0, max_value=1.0))
def test_slashing_never_raises_a_score(score: float, factor: float) -> None:
    # Templar issue #45: multiplying a negative score by a penalty moved it up
    slashed = slash(score, factor)
    assert 0.0 <= slashed <= max(0.0, score)


@given(anything, anything, anything, anything)
def test_final_score_is_finite_and_nonnegative(o: float, i: float, live: float, f: float) -> None:
    s = final_score(o, verified=True, synced=True, indicator_average=i, liveness=live)
    assert math.isfinite(s) and s >= 0.0
    assert nonnegative(f) >= 0.0


def test_slash_factor_outside_unit_interval_is_refused() -> None:
    for bad in (-0.1, 1.5, math.nan):
        with pytest.raises(ConfigError):
            slash(1.0, bad)
