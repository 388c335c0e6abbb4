import json
import math
from pathlib import Path

import pytest

from protocol.errors import ConfigError
from validator.ratings import Rating, RatingPolicy, RatingStore, match_ranks


def test_templar_constants_and_new_miner_ordinal_zero() -> None:
    store = RatingStore()
    assert (store.policy.beta, store.policy.tau) == (7.0, 0.1)
    assert store.get("new").ordinal == pytest.approx(0.0)


def test_match_ranks_ties_and_nonfinite_last() -> None:
    ranks = match_ranks({"a": 0.3, "b": 0.1, "c": 0.3, "d": -math.inf, "e": math.nan})
    assert ranks == {"a": 1, "c": 1, "b": 3, "d": 4, "e": 4}


def test_rates_only_with_two_or_more_miners() -> None:
    store = RatingStore()
    assert not store.rate_round(1, {"solo": 0.5})
    assert store.ratings == {} and store.last_rated_round is None
    assert store.rate_round(1, {"a": 0.5, "b": 0.1})
    assert store.get("a").ordinal > store.get("b").ordinal


def test_winner_climbs_and_round_is_rated_once() -> None:
    store = RatingStore()
    for r in range(5):
        assert store.rate_round(r, {"good": 0.02, "ok": 0.01, "bad": -0.01})
    snapshot = dict(store.ratings)
    assert not store.rate_round(4, {"good": -1.0, "bad": 1.0})  # replayed round: ignored
    assert store.ratings == snapshot
    assert store.get("good").ordinal > store.get("ok").ordinal > store.get("bad").ordinal


def test_result_does_not_depend_on_dict_order() -> None:
    a, b = RatingStore(), RatingStore()
    a.rate_round(0, {"x": 0.1, "y": 0.2, "z": 0.3})
    b.rate_round(0, {"z": 0.3, "x": 0.1, "y": 0.2})
    assert a.ratings == b.ratings


def test_persistence_round_trip_is_identical(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ratings.json"
    store = RatingStore.load(path)
    for r in range(7):
        store.rate_round(r, {f"m{i}": ((i * 7 + r * 3) % 5) / 10 for i in range(6)})
    store.reset("m0")
    reloaded = RatingStore.load(path)
    assert reloaded.ratings == store.ratings  # exact floats, not approximately
    assert reloaded.last_rated_round == 6 and reloaded.policy == store.policy
    # continuing after a restart gives the same numbers as never restarting
    store.rate_round(7, {"m1": 0.4, "m2": 0.1})
    reloaded.rate_round(7, {"m1": 0.4, "m2": 0.1})
    assert reloaded.ratings == store.ratings
    assert not list(path.parent.glob("*.tmp"))  # atomic write leaves no temporary behind


def test_load_refuses_other_policy_or_garbage(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    store = RatingStore(path=path)
    store.rate_round(0, {"a": 1.0, "b": 0.0})
    with pytest.raises(ConfigError):
        RatingStore.load(path, RatingPolicy(beta=20.0))
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError):
        RatingStore.load(path)
    path.write_text(json.dumps({"version": 99, "policy": {}, "ratings": {},
                                "last_rated_round": None}), encoding="utf-8")
    with pytest.raises(ConfigError):
        RatingStore.load(path)


def test_rating_ordinal() -> None:
    assert Rating(30.0, 2.0).ordinal == pytest.approx(24.0)
