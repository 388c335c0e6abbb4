import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import ConfigError
from validator.gates import final_score, slash
from validator.weights import PPB, WeightPolicy, epoch_weights, sharpen, to_parts

scores_st = st.dictionaries(
    st.text(alphabet="abcdefgh", min_size=1, max_size=3),
    st.floats(min_value=-100.0, max_value=100.0, allow_nan=False),
    min_size=1,
    max_size=12,
)


@given(scores_st, st.floats(min_value=0.5, max_value=4.0))
def test_sums_exactly_to_one_billion_and_failing_miners_get_zero(
    scores: dict[str, float], power: float
) -> None:
    w = epoch_weights(scores, WeightPolicy(power=power))
    if any(s > 0 for s in scores.values()):
        assert sum(w.values()) == PPB
    else:
        assert w == {}
    for k, s in scores.items():
        if s <= 0:
            assert w.get(k, 0) == 0
    # monotone: a higher score never gets fewer parts
    for a in w:
        for b in w:
            if scores[a] > scores[b]:
                assert w[a] >= w[b]


def test_gate_failure_gives_exactly_zero_weight() -> None:
    gated = {
        "honest": final_score(12.0, verified=True, synced=True, indicator_average=0.6),
        "unverified": final_score(50.0, verified=False, synced=True, indicator_average=0.9),
        "desynced": final_score(50.0, verified=True, synced=False, indicator_average=0.9),
        "copier": final_score(50.0, verified=True, synced=True, indicator_average=-0.4),
    }
    w = epoch_weights(gated)
    assert w == {"honest": PPB}


def test_sharpening_is_monotone_in_power() -> None:
    scores = {"a": 3.0, "b": 2.0, "c": 1.0}
    tops = [sharpen(scores, p)["a"] for p in (1.0, 2.0, 3.0, 5.0)]
    assert tops == sorted(tops) and tops[0] < tops[-1]
    assert sharpen(scores, 1.0)["a"] == pytest.approx(0.5)
    assert sharpen({"a": 1e300, "b": 5e299}, 3.0)["a"] == pytest.approx(8 / 9)  # no overflow


def test_burn_fraction_is_respected() -> None:
    policy = WeightPolicy(burn_fraction=0.5, burn_recipient="burn")
    w = epoch_weights({"a": 2.0, "b": 1.0}, policy)
    assert w["burn"] == PPB // 2 and sum(w.values()) == PPB
    assert w["a"] == 400_000_000 and w["b"] == 100_000_000
    assert epoch_weights({"a": -1.0}, policy) == {"burn": PPB}
    with pytest.raises(ConfigError):
        WeightPolicy(burn_fraction=0.1)


def test_max_paid_keeps_the_top() -> None:
    w = epoch_weights({"a": 3.0, "b": 2.0, "c": 1.0}, WeightPolicy(power=1.0, max_paid=2))
    assert set(w) == {"a", "b"} and w["a"] == 600_000_000


@given(
    st.floats(min_value=-50.0, max_value=50.0),
    st.floats(min_value=0.01, max_value=50.0),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_negative_or_slashed_never_outranks_honest(cheat: float, honest: float, f: float) -> None:
    cheater_score = slash(cheat, f) if cheat < honest else slash(-abs(cheat), f)
    w = epoch_weights({"honest": honest, "cheat": cheater_score})
    assert w.get("cheat", 0) <= w["honest"]
    if cheat < 0:
        assert w.get("cheat", 0) == 0


def test_parts_are_exact_and_largest_remainder() -> None:
    parts = to_parts({"a": 1.0, "b": 1.0, "c": 1.0}, 10)
    assert sum(parts.values()) == 10 and sorted(parts.values()) == [3, 3, 4]
    assert parts["a"] == 4  # ties broken by key
    assert to_parts({"a": math.nan, "b": 1.0}, 7) == {"a": 0, "b": 7}
