"""Smoke test of bench.network: 3 nodes, each its own process, through every stage."""

from __future__ import annotations

import argparse

import pytest

from bench.network import run_mode

pytestmark = [pytest.mark.network, pytest.mark.slow]


def _args() -> argparse.Namespace:
    return argparse.Namespace(nodes=3, rounds=2, round_length=3, probes=2, probe_spacing=0.1,
                              certifier="equal", stage_timeout=120.0)


def test_processes_mode_measures_every_figure() -> None:
    summary = run_mode("processes", _args())
    # every (publisher, receiver, probe) arrived, with a real, positive latency
    assert summary["gossip_samples"] == 3 * 2 * 2
    assert summary["gossip_p50_ms"] > 0
    # bytes were counted at the socket, not computed: a miner sent its contributions at least
    assert summary["wire_bytes_per_miner_per_round"] > 200
    assert summary["distinct_final_hashes"] == 1
    assert summary["overhead_samples"] >= 2  # a contended round may be missed; 4 at most
    assert summary["round_overhead_fraction"] > 0
    parts = summary["overhead_decomposition_s"]
    consecutive = sum(v for k, v in parts.items() if k != "contribution_publish")
    # the parts are consecutive marks from the deadline to the checkpoint: they sum to the wait
    assert consecutive == pytest.approx(summary["certificate_wait_s_mean"], abs=1e-6)
