"""bench.network's figures from the nodes' result files: latency, wire bytes, round overhead.

Round overhead of miner m in round r (the definition the issue's goal is stated in):

    overhead = max(0, ready - deadline) + publish,   over the round length

where `deadline` is the work deadline of the clock round m worked on round r in, `ready` is
when m holds round r + 1's certified model (bundle applied and checkpointed) and `publish`
the time its own contribution took to publish. It is the share of the round the miner cannot
compute in: it computes only on a certified model. A round may close early (the validator
scores, and certifies, during the work phase once every registered miner's contribution is
in); a miner that holds the next model before its deadline waits 0, not a negative time
(it starts the next round at the clock's round start either way).

The wait after the deadline is split into consecutive parts, each a mean over (miner, round):
validator wake (deadline -> scoring starts), scoring, validator driver (scoring done ->
certifying starts: the driver's pass, or waiting for the certify phase when scoring ended
early), validator apply (computing its decision's model hash, which the certificate names),
seal (sign, store, hand to the transport), gossip (publish call -> verified bundle offered to
the miner's follower), finality and wake (offer -> apply starts: waiting for endorsements, if
the follower needs any, and for the miner's driver to notice), miner apply, checkpoint (from
the end of applying). Every mark is clipped to the deadline (a step done before it costs the
miner nothing), so the parts add up to the clipped wait. The validator's own apply of the
final round and its books (ratings, ledger, receipts) come after the certificate: reported
separately, as CPU they take, not time a miner waits.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

WORK_FRACTION = 0.6  # the services' default RoundClock.work_fraction

PARTS = (
    ("validator_wake", "deadline", "score_start", "validator"),
    ("scoring", "score_start", "score_end", "validator"),
    ("validator_driver", "score_end", "vapply_start", "validator"),
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


def _deadline_of(at: float, genesis: float, round_length: float) -> float:
    """The work deadline of the clock round containing `at`."""
    return genesis + ((at - genesis) // round_length + WORK_FRACTION) * round_length


def _event(validator: dict[str, Any], miner: dict[str, Any], event: str,
           round_index: int) -> float | None:
    at = _marks(validator, event, round_index)
    return _marks(miner, event, round_index) if at is None else at


def _after(deadline: float, at: float | None) -> float | None:
    """The mark, or the deadline when it came before it: only what follows the deadline
    keeps the miner waiting."""
    return None if at is None else max(deadline, at)


def _wait_parts(validator: dict[str, Any], miner: dict[str, Any], round_index: int,
                deadline: float) -> dict[str, float]:
    """The parts of the miner's wait (module docstring): consecutive marks clipped to the
    deadline, so a step done before it counts 0 and the parts add up to the clipped wait."""
    out: dict[str, float] = {}
    for name, first, second, _ in PARTS:
        a = deadline if first == "deadline" else _event(validator, miner, first, round_index)
        b = _event(validator, miner, second, round_index)
        a, b = _after(deadline, a), _after(deadline, b)
        if a is not None and b is not None:
            out[name] = b - a
    return out


def early_close(validator: dict[str, Any], rounds: int, round_length: float) -> dict[str, Any]:
    """How many rounds the validator scored, and certified, before their work deadline."""
    genesis = float(validator["genesis"])
    scored_early = certified_early = certified = 0
    for r in range(rounds):
        score, bundle = (_marks(validator, e, r) for e in ("score_start", "bundle_start"))
        if score is None:
            continue
        deadline = _deadline_of(score, genesis, round_length)
        scored_early += score < deadline
        if bundle is not None:
            certified += 1
            certified_early += bundle < deadline
    return {"rounds_certified": certified, "rounds_scored_early": scored_early,
            "rounds_closed_early": certified_early}


def _off_path(validator: dict[str, Any], step: str) -> float | None:
    starts, ends = validator["marks"].get(f"{step}_start", {}), validator["marks"].get(
        f"{step}_end", {})
    return _mean([float(ends[r]) - float(t) for r, t in starts.items() if r in ends])


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
            deadline = _deadline_of(start, genesis, round_length)
            publish = pub[1] - pub[0] if pub[0] is not None and pub[1] is not None else 0.0
            waits.append(max(0.0, ready - deadline))
            publishes.append(publish)
            overheads.append((waits[-1] + publish) / round_length)
            computes.append(end - start)
            for name, value in _wait_parts(validator, miner, r, deadline).items():
                parts[name].append(value)
    decomposition = {name: _mean(values) for name, values in parts.items()}
    decomposition["contribution_publish"] = _mean(publishes)
    return {
        "round_overhead_fraction": _mean(overheads),
        "round_overhead_p90": percentile(overheads, 0.9),
        "certificate_wait_s_mean": _mean(waits),
        "certificate_wait_s_p50": percentile(waits, 0.5),
        "zero_wait_share": (sum(w == 0.0 for w in waits) / len(waits)) if waits else None,
        "compute_s_p50": percentile(computes, 0.5),
        "compute_fraction": (statistics.fmean(computes) / round_length) if computes else None,
        "overhead_samples": len(overheads),
        "overhead_decomposition_s": decomposition,
        **early_close(validator, rounds, round_length),
        # after the certificate is out: CPU the validator spends, not time a miner waits
        "validator_follow_s_mean": _off_path(validator, "vfollow"),
        "validator_books_s_mean": _off_path(validator, "book"),
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
