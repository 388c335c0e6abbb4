import pytest

from protocol.errors import ConfigError
from validator.liveness import (
    LivenessPolicy,
    Presence,
    decayed_score,
    liveness_factor,
    mark_seen,
    missed_rounds,
    needs_reset,
)


def test_present_miner_keeps_full_factor() -> None:
    p = mark_seen(None, 10)
    assert p == Presence(first_seen=10, last_seen=10)
    assert liveness_factor(p, 10) == 1.0
    assert liveness_factor(p, 11) == 1.0  # seen in the round before: nothing missed


def test_factor_decays_by_075_per_missed_round() -> None:
    p = mark_seen(None, 10)
    assert missed_rounds(p, 13) == 2
    assert liveness_factor(p, 13) == pytest.approx(0.75**2)
    assert liveness_factor(p, 16) < liveness_factor(p, 15) < liveness_factor(p, 14)


def test_reset_after_long_absence_and_comeback() -> None:
    policy = LivenessPolicy(decay=0.75, reset_after=16)
    p = mark_seen(None, 0)
    assert not needs_reset(p, 16, policy)  # 15 missed
    assert needs_reset(p, 17, policy)  # 16 missed
    assert liveness_factor(p, 17, policy) == 0.0
    back = mark_seen(p, 30)
    assert liveness_factor(back, 31, policy) == 1.0 and back.first_seen == 0


def test_never_seen_is_zero_and_rounds_cannot_go_back() -> None:
    assert liveness_factor(None, 5) == 0.0
    assert not needs_reset(None, 5)
    with pytest.raises(ConfigError):
        mark_seen(mark_seen(None, 5), 4)


def test_decay_never_raises_a_negative_score() -> None:
    assert decayed_score(-4.0, 3) == 0.0
    assert decayed_score(float("nan"), 1) == 0.0
    assert decayed_score(8.0, 2) == pytest.approx(4.5)
    assert decayed_score(8.0, 16) == 0.0
    with pytest.raises(ConfigError):
        LivenessPolicy(decay=1.5)
