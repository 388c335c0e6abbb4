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


def reason_class(reason: str) -> str:
    """A receipt's reason without its numbers and details: what refusals are counted by.

    "scored (audited): value 0.012 x ..." -> "scored"; "failed fast filters: out_of_sync
    base hash ..." -> "failed fast filters: out_of_sync"; "no measured improvement (value
    -0.002)" -> "no measured improvement"; "rating ordinal -1.20 too low" -> "rating ordinal
    too low"; "banned after a failed audit in round 3" -> "banned after a failed audit".
    """
    text = reason.strip()
    if text.startswith("scored"):
        return "scored"
    head, sep, rest = text.partition(":")
    if head == "failed fast filters" and sep:
        words = rest.split()
        return f"{head}: {words[0]}" if words else head
    cut = min((i for i in (text.find(":"), text.find("(")) if i >= 0), default=len(text))
    words = [w for w in text[:cut].split() if not any(ch.isdigit() for ch in w)]
    while words and words[-1] in ("in", "round", "at"):
        words.pop()
    return " ".join(words) or "unexplained"
