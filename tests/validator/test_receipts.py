import math

import pytest

from protocol.encoding import decode, encode
from protocol.messages import ScoreReceipt
from validator.loss_delta import LossDelta
from validator.outcome import RoundOutcome, explain, match_score, outcome_score
from validator.ratings import Rating
from validator.receipts import build_receipt

HONEST = RoundOutcome(filters_passed=True, verified=True, synced=True,
                      delta=LossDelta(own=0.03, random=0.01, valid=True), influence=-0.02,
                      indicator_average=0.6)
RATED = Rating(mu=40.0, sigma=5.0)


def _receipt(outcome: RoundOutcome, weight: int = 0) -> ScoreReceipt:
    return build_receipt(network_id="testnet", round_index=3, validator=b"v" * 32, sequence=9,
                         miner=b"m" * 32, outcome=outcome, rating=RATED, weight_ppb=weight)


def test_honest_receipt_carries_its_numbers_and_round_trips() -> None:
    r = _receipt(HONEST, weight=250_000_000)
    assert (r.loss_delta_own, r.loss_delta_random, r.influence) == (0.03, 0.01, -0.02)
    assert (r.rating_mu, r.rating_sigma, r.weight_ppb) == (40.0, 5.0, 250_000_000)
    assert r.reason == "scored" and r.filters_passed and r.verified is True
    assert decode(encode(r)) == r


def test_failures_are_explained_and_unrepresentable_values_zeroed() -> None:
    bad = RoundOutcome(filters_passed=True, verified=False, synced=True,
                       delta=LossDelta(0.0, 0.0, valid=False), influence=math.nan,
                       indicator_average=0.6)
    r = _receipt(bad)
    assert r.influence == 0.0 and r.verified is False
    assert "verification" in r.reason
    assert "filters" in explain(RoundOutcome(False, None, True, None, None, 0.0), RATED)
    assert "synced" in explain(RoundOutcome(True, True, False, None, None, 0.5), RATED)
    assert "average" in explain(RoundOutcome(True, True, True, None, None, -0.2), RATED)


def test_match_score_ranks_failures_last_and_uses_influence() -> None:
    assert match_score(HONEST, validation_loss=2.0) == pytest.approx(0.5 * 0.01 + 0.5 * 0.01)
    unverified = RoundOutcome(True, None, True, HONEST.delta, -0.02, 0.6)
    assert match_score(unverified, 2.0) == -math.inf
    no_influence = RoundOutcome(True, True, True, HONEST.delta, None, 0.6)
    assert match_score(no_influence, 2.0) == pytest.approx(0.005)
    assert match_score(HONEST, validation_loss=0.0) == pytest.approx(0.005)


def test_outcome_score_gates() -> None:
    assert outcome_score(HONEST, RATED) == pytest.approx(25.0 * 0.6)
    assert outcome_score(RoundOutcome(True, None, True, None, None, 0.9), RATED) == 0.0
    assert outcome_score(HONEST, Rating(mu=10.0, sigma=5.0)) == 0.0
