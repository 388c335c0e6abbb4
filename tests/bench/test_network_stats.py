"""bench.network_stats on hand-made marks: early closes wait 0 and the parts still add up."""

from __future__ import annotations

from typing import Any

import pytest

from bench.network_stats import PARTS, round_overhead

LENGTH = 3.0  # work deadline of clock round r: 3 r + 1.8


def _node(role: str, marks: dict[str, dict[int, float]]) -> dict[str, Any]:
    return {"role": role, "genesis": 0.0,
            "marks": {e: {str(r): t for r, t in by_round.items()} for e, by_round in marks.items()}}


def _results() -> list[dict[str, Any]]:
    # round 0: scored early (all in by 0.1 s) but certified after the deadline;
    # round 1: closed early, the miner holds round 2's model at 3.7 s, before 4.8 s
    validator = _node("validator", {
        "score_start": {0: 0.1, 1: 3.1}, "score_end": {0: 0.5, 1: 3.4},
        "vapply_start": {0: 1.85, 1: 3.41}, "vapply_end": {0: 1.86, 1: 3.42},
        "bundle_start": {0: 1.87, 1: 3.43},
        "vfollow_start": {0: 1.9}, "vfollow_end": {0: 2.0},
    })
    miner = _node("miner", {
        "produce_start": {0: 0.0, 1: 3.0}, "produce_end": {0: 0.05, 1: 3.05},
        "publish_start": {0: 0.05, 1: 3.05}, "publish_end": {0: 0.06, 1: 3.06},
        "arrival": {0: 1.9, 1: 3.45}, "apply_start": {0: 1.91, 1: 3.5},
        "apply_end": {0: 1.92, 1: 3.6}, "save_end": {0: 1.95, 1: 3.7},
    })
    return [validator, miner]


def test_an_early_close_waits_zero_and_the_parts_add_up() -> None:
    out = round_overhead(_results(), rounds=2, round_length=LENGTH)
    assert out["overhead_samples"] == 2
    assert out["certificate_wait_s_mean"] == pytest.approx((1.95 - 1.8 + 0.0) / 2)
    assert out["zero_wait_share"] == 0.5
    assert out["round_overhead_fraction"] == pytest.approx((0.15 + 0.01 + 0.0 + 0.01) / 2 / LENGTH)
    parts = out["overhead_decomposition_s"]
    assert all(parts[name] >= 0 for name, *_ in PARTS)
    # scoring ended 1.3 s before the deadline: none of it, nor the wait for the certify phase
    # before the deadline, is charged to the miner
    assert parts["scoring"] == 0
    assert parts["validator_driver"] == pytest.approx(0.05 / 2)
    assert sum(parts[name] for name, *_ in PARTS) == pytest.approx(out["certificate_wait_s_mean"])


def test_early_scoring_and_early_certificates_are_counted() -> None:
    out = round_overhead(_results(), rounds=2, round_length=LENGTH)
    assert (out["rounds_certified"], out["rounds_scored_early"],
            out["rounds_closed_early"]) == (2, 2, 1)
    assert out["validator_follow_s_mean"] == pytest.approx(0.1)
    assert out["validator_books_s_mean"] is None  # no books marked
