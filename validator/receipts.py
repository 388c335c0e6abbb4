"""Score receipts: a signed, per-miner, per-round record of why it scored what it scored."""

from __future__ import annotations

import math

from protocol.domain_types import PublicKey
from protocol.messages import MAX_REASON_CHARS, ScoreReceipt
from validator.outcome import RoundOutcome, explain
from validator.ratings import Rating


def _finite_or_zero(value: float | None) -> float:
    return float(value) if value is not None and math.isfinite(value) else 0.0


def build_receipt(
    *,
    network_id: str,
    round_index: int,
    validator: PublicKey,
    sequence: int,
    miner: PublicKey,
    outcome: RoundOutcome,
    rating: Rating,
    weight_ppb: int,
    reason: str | None = None,
) -> ScoreReceipt:
    """The unsigned receipt for one miner (seal it with protocol.signing to publish).

    Values the message cannot carry (a missing or non-finite loss delta or influence) are
    written as 0 and the reason says why the score is what it is (``explain`` unless
    ``reason`` is given; cut to the message's 256 characters).
    """
    delta = outcome.delta
    valid = delta is not None and delta.valid
    return ScoreReceipt(
        network_id=network_id,
        round_index=round_index,
        validator=validator,
        sequence=sequence,
        miner=miner,
        filters_passed=outcome.filters_passed,
        verified=outcome.verified,
        loss_delta_own=delta.own if valid and delta is not None else 0.0,
        loss_delta_random=delta.random if valid and delta is not None else 0.0,
        influence=_finite_or_zero(outcome.influence),
        rating_mu=rating.mu,
        rating_sigma=rating.sigma,
        weight_ppb=weight_ppb,
        reason=(explain(outcome, rating) if reason is None else reason)[:MAX_REASON_CHARS],
    )
