"""bench.network's figures from the nodes' result files: latency, wire bytes, round overhead.

Round overhead of miner m in round r (the definition the issue's goal is stated in):

    overhead = (ready - deadline) + publish,   over the round length

where `deadline` is the work deadline of the clock round m worked on round r in, `ready` is
when m holds round r + 1's certified model (bundle applied and checkpointed) and `publish`
the time its own contribution took to publish before the deadline. It is the share of the
round the miner cannot compute in: it computes only on a certified model, and nothing
certifies before the deadline.

The wait after the deadline is split into consecutive parts, each a mean over (miner, round):
validator wake (deadline -> scoring starts), scoring, validator bookkeeping (its books,
status file and driver loop between scoring and certifying), validator apply (computing its
decision's model hash, which the certificate names), seal (sign, store, hand to the
transport), gossip (publish call -> verified bundle offered to the miner's follower), finality
and wake (offer -> apply starts: waiting for endorsements, if the follower needs any, and
for the miner's driver to notice), miner apply, checkpoint (from the end of applying). The
parts are consecutive, so they add up to the wait.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

WORK_FRACTION = 0.6  # the services' default RoundClock.work_fraction

PARTS = (
    ("validator_wake", "deadline", "score_start", "validator"),
    ("scoring", "score_start", "score_end", "validator"),
    ("validator_bookkeeping", "score_end", "vapply_start", "validator"),
    ("validator_apply", "vapply_start", "vapply_end", "validator"),
    ("seal_and_store", "vapply_end", "bundle_start", "validator"),
    ("gossip", "bundle_start", "arrival", "mixed"),
    ("finality_and_wake", "arrival", "apply_start", "miner"),
    ("miner_apply", "apply_start", "apply_end", "miner"),
    ("checkpoint", "apply_end", "save_end", "miner"),
)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile by nearest rank (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def gossip_latency(results: Sequence[dict[str, Any]], probes: int) -> dict[str, Any]:
    """p50 / p99 over every (publisher, receiver, probe) delivery, in ms."""
    latencies = [(received - sent) / 1e6 for r in results for _, _, sent, received in r["probes"]]
    n = len(results)
    expected = n * (n - 1) * probes
    return {
        "gossip_p50_ms": percentile(latencies, 0.5),
        "gossip_p99_ms": percentile(latencies, 0.99),
        "gossip_max_ms": max(latencies) if latencies else None,
        "gossip_samples": len(latencies),
        "gossip_delivery_ratio": len(latencies) / expected if expected else None,
    }


def wire_bytes(results: Sequence[dict[str, Any]], rounds: int) -> dict[str, Any]:
    """Bytes sent (and received) at the socket between genesis and the last round, per round."""
    def per_round(r: dict[str, Any], direction: str) -> float:
        wire = r["wire"]
        return (wire["at_last_round"][direction] - wire["at_genesis"][direction]) / rounds

    miners = [r for r in results if r["role"] == "miner"]
    validators = [r for r in results if r["role"] == "validator"]
    return {
        "wire_bytes_per_miner_per_round": _mean([per_round(r, "sent") for r in miners]),
        "wire_bytes_received_per_miner_per_round": _mean(
            [per_round(r, "received") for r in miners]),
        "wire_bytes_validator_per_round": _mean([per_round(r, "sent") for r in validators]),
    }


def _marks(result: dict[str, Any], event: str, round_index: int) -> float | None:
    value = result["marks"].get(event, {}).get(str(round_index))
    return None if value is None else float(value)


def round_overhead(results: Sequence[dict[str, Any]], rounds: int,
                   round_length: float) -> dict[str, Any]:
    """The overhead fraction (module docstring) and its decomposition, per (miner, round)."""
    validator = next(r for r in results if r["role"] == "validator")
    genesis = float(validator["genesis"])
    overheads, waits, computes, publishes = [], [], [], []
    parts: dict[str, list[float]] = {name: [] for name, *_ in PARTS}
    for miner in (r for r in results if r["role"] == "miner"):
        for r in range(rounds):
            ready, start, end = (_marks(miner, e, r) for e in ("save_end", "produce_start",
                                                              "produce_end"))
            pub = [_marks(miner, e, r) for e in ("publish_start", "publish_end")]
            if ready is None or start is None or end is None:
                continue
            # the miner's own deadline: that of the clock round it worked in (when the history
            # falls behind the clock, round r is worked on in a later clock round)
            deadline = genesis + ((start - genesis) // round_length + WORK_FRACTION) * round_length
            publish = pub[1] - pub[0] if pub[0] is not None and pub[1] is not None else 0.0
            waits.append(ready - deadline)
            publishes.append(publish)
            overheads.append((max(0.0, ready - deadline) + publish) / round_length)
            computes.append(end - start)
            for name, first, second, _ in PARTS:
                a = deadline if first == "deadline" else (
                    _marks(validator, first, r) or _marks(miner, first, r))
                b = _marks(validator, second, r) or _marks(miner, second, r)
                if a is not None and b is not None:
                    parts[name].append(b - a)
    decomposition = {name: _mean(values) for name, values in parts.items()}
    decomposition["contribution_publish"] = _mean(publishes)
    return {
        "round_overhead_fraction": _mean(overheads),
        "round_overhead_p90": percentile(overheads, 0.9),
        "certificate_wait_s_mean": _mean(waits),
        "certificate_wait_s_p50": percentile(waits, 0.5),
        "compute_s_p50": percentile(computes, 0.5),
        "compute_fraction": (statistics.fmean(computes) / round_length) if computes else None,
        "overhead_samples": len(overheads),
        "overhead_decomposition_s": decomposition,
    }


def summarise(results: Sequence[dict[str, Any]], *, rounds: int, round_length: float,
              probes: int) -> dict[str, Any]:
    """Every figure of one mode."""
    statuses = {r["name"]: r["status"] for r in results}
    return {
        "nodes": len(results),
        **gossip_latency(results, probes),
        **wire_bytes(results, rounds),
        **round_overhead(results, rounds, round_length),
        "late_contributions": sum(s.get("late", 0) for s in statuses.values()),
        "catch_ups": sum(s.get("catch_ups", 0) for s in statuses.values()),
        "distinct_final_hashes": len({s.get("model_hash") for s in statuses.values()}),
        "min_mesh_at_ready": min(min(r["mesh_at_ready"].values()) for r in results),
    }
