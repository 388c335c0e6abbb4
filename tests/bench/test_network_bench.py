"""Smoke tests of bench.network: 3 nodes, each its own process, through every stage, with the
scoring validator; once with every registered miner running, once with one absent."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from bench.network import run_mode

pytestmark = [pytest.mark.network, pytest.mark.slow]


def _args() -> argparse.Namespace:
    return argparse.Namespace(nodes=3, rounds=2, round_length=3, probes=2, probe_spacing=0.1,
                              certifier="scoring", stage_timeout=120.0)


def _check_common(summary: dict[str, Any]) -> None:
    # every (publisher, receiver, probe) arrived, with a real, positive latency
    assert summary["gossip_samples"] == 3 * 2 * 2
    assert summary["gossip_p50_ms"] > 0
    # bytes were counted at the socket, not computed: a miner sent its contributions at least
    assert summary["wire_bytes_per_miner_per_round"] > 200
    assert summary["distinct_final_hashes"] == 1
    assert summary["overhead_samples"] >= 2  # 4 at most
    assert summary["rounds_certified"] == 2
    parts = summary["overhead_decomposition_s"]
    consecutive = sum(v for k, v in parts.items() if k != "contribution_publish")
    # the parts are consecutive marks (clipped to the deadline) up to the checkpoint: they
    # sum to the wait, and none is negative
    assert consecutive == pytest.approx(summary["certificate_wait_s_mean"], abs=1e-6)
    assert min(parts.values()) >= 0


def test_full_participation_scores_before_the_deadline() -> None:
    summary = run_mode("processes", _args())
    _check_common(summary)
    # both miners publish within ~0.1 s of a 1.8 s work phase: the validator need not wait
    assert summary["rounds_scored_early"] >= 1
    assert summary["absent_miners"] == 0


def test_an_absent_miner_keeps_the_first_round_open_until_the_deadline() -> None:
    summary = run_mode("processes", _args(), absent=1)
    _check_common(summary)
    assert summary["absent_miners"] == 1
    # round 0: the validator has heard nobody yet, so it waits for every registered miner
    # until the deadline; from round 1 the silent one is no longer expected (pool.expected)
    assert summary["rounds_scored_early"] <= 1
    assert summary["rounds_closed_early"] <= 1
    assert summary["round_overhead_fraction"] > 0
