"""Benchmark of the canonical generator and the apply rule.

    python -m bench.perturb [--json PATH] [--floats N] [--repeats R] [--quick]

Measures, in one run and interleaved so that load on a shared machine hits all alike:
canonical Gaussian / Rademacher generation against ``torch.randn`` and a plain axpy, the apply
of 64 low-rank directions to a 1024x1024 weight against 64 dense Gaussian ones (both through
``apply_updates_``), the dense apply's throughput (terms x parameters per second) on a
zeroth-order round (K=1024 seeds from each of 32 miners on the 8,192 LoRA parameters of the
convergence task) and on a larger model, each timed alongside the canonical generator making
the same number of floats, and whether two freshly spawned processes (1 and 2 threads) produce
the same bytes as this one. ``--quick`` shrinks the rounds (8 miners) and the repetitions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from protocol.apply import apply_updates_
from protocol.gaussian import canonical_gaussian, canonical_rademacher, tensor_le_bytes
from protocol.layout import ParamLayout
from protocol.model_hash import model_hash
from protocol.perturb import DirectionKind, DirectionSpec, Update, direction

GOAL_GAUSSIAN_VS_RANDN = 1.0
GOAL_LOWRANK_SPEEDUP = 10.0
GOAL_APPLY_VS_GENERATOR = 0.5
APPLY_TERMS = 64
APPLY_SHAPE = (1024, 1024)
# The LoRA (rank 4) of the convergence task: 8,192 trainable parameters in 8 tensors.
ZO_LAYOUT = ParamLayout(
    names=tuple(f"lora{i // 2}_{'AB'[i % 2]}" for i in range(8)),
    shapes=((4, 256), (256, 4)) * 4,
)
ZO_SEEDS_PER_MINER = 1024
ZO_MINERS = 32
# A larger model: 1,048,576 parameters in 4 matrices and a bias, 256 terms.
LARGE_LAYOUT = ParamLayout(
    names=("q", "k", "v", "o", "bias"),
    shapes=((512, 512), (512, 512), (512, 511), (512, 512), (512,)),
)
LARGE_TERMS = 256


def _median_seconds(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time of each function, calls interleaved round-robin after one warm-up."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def digest() -> str:
    """SHA-256 over directions of every kind and a model after a sequence of updates."""
    layout = ParamLayout(names=("w", "b", "m"), shapes=((300, 257), (70_001,), (64, 33)))
    h = hashlib.sha256()
    for spec in (
        DirectionSpec(DirectionKind.GAUSSIAN),
        DirectionSpec(DirectionKind.RADEMACHER),
        DirectionSpec(DirectionKind.LOWRANK, rank=4),
    ):
        for z in direction(2**62 + 1, layout, spec):
            h.update(tensor_le_bytes(z))
        params = [torch.zeros(shape) for shape in layout.shapes]
        updates = [Update(seed=k, coeff=(-1) ** k * 1e-3 * (k + 1)) for k in range(16)]
        apply_updates_(params, layout, updates, spec)
        h.update(model_hash(list(zip(layout.names, params, strict=True))))
    return h.hexdigest()


def _digest_in_fresh_process(threads: int) -> str:
    code = (
        f"import torch; torch.set_num_threads({threads}); "
        "from bench.perturb import digest; print(digest())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    return result.stdout.strip().splitlines()[-1]


def _apply_timings(repeats: int) -> dict[str, float]:
    layout = ParamLayout(names=("weight",), shapes=(APPLY_SHAPE,))
    weight = [torch.zeros(APPLY_SHAPE)]
    updates = [Update(seed=s, coeff=1e-3 * (s - 31.5)) for s in range(APPLY_TERMS)]
    lowrank = DirectionSpec(DirectionKind.LOWRANK, rank=1)
    dense = DirectionSpec(DirectionKind.GAUSSIAN)
    return _median_seconds(
        {
            "lowrank": lambda: apply_updates_(weight, layout, updates, lowrank),
            "dense": lambda: apply_updates_(weight, layout, updates, dense),
        },
        repeats,
    )


def _zo_updates(terms: int) -> list[Update]:
    """A round's terms: distinct 64-bit seeds, coefficients of mixed signs and magnitudes."""
    return [
        Update(seed=(0x9E3779B97F4A7C15 * (k + 1)) % 2**64, coeff=1e-4 * ((k % 13) - 6.5) / 3.0)
        for k in range(terms)
    ]


def _apply_throughput(
    layout: ParamLayout, terms: int, gen_floats: int, repeats: int
) -> dict[str, float]:
    """Dense Gaussian apply of ``terms`` whole-vector updates (terms x numel floats) vs the
    canonical generator making ``gen_floats`` in one stream, interleaved: G floats/s of each."""
    params = [torch.zeros(shape) for shape in layout.shapes]
    updates = _zo_updates(terms)
    spec = DirectionSpec(DirectionKind.GAUSSIAN)
    seconds = _median_seconds(
        {
            "apply": lambda: apply_updates_(params, layout, updates, spec),
            "generator": lambda: canonical_gaussian(11, gen_floats),
        },
        repeats,
    )
    apply_rate = terms * layout.numel / seconds["apply"] / 1e9
    gen_rate = gen_floats / seconds["generator"] / 1e9
    return {
        "apply_gfloats_per_s": apply_rate,
        "generator_gfloats_per_s": gen_rate,
        "apply_vs_generator": apply_rate / gen_rate,
        "apply_s": seconds["apply"],
    }


def run(floats: int, repeats: int, miners: int = ZO_MINERS) -> dict[str, object]:
    """Measure everything and return the JSON-ready results."""
    x, y = torch.randn(floats), torch.randn(floats)
    gen = _median_seconds(
        {
            "gaussian": lambda: canonical_gaussian(7, floats),
            "rademacher": lambda: canonical_rademacher(7, floats),
            "randn": lambda: torch.randn(floats),
            "axpy": lambda: y.add_(x, alpha=1e-3),
        },
        repeats,
    )
    rate = {name: floats / seconds / 1e9 for name, seconds in gen.items()}
    apply_t = _apply_timings(max(3, repeats // 2))
    zo = _apply_throughput(ZO_LAYOUT, ZO_SEEDS_PER_MINER * miners, floats, max(3, repeats // 3))
    large = _apply_throughput(LARGE_LAYOUT, LARGE_TERMS, floats, max(3, repeats // 3))
    here = digest()
    fresh = [_digest_in_fresh_process(1), _digest_in_fresh_process(2)]
    identical = fresh[0] == fresh[1] == here
    speedup = apply_t["dense"] / apply_t["lowrank"]
    ratio = rate["gaussian"] / rate["randn"]
    goals_met = (
        identical
        and ratio >= GOAL_GAUSSIAN_VS_RANDN
        and speedup >= GOAL_LOWRANK_SPEEDUP
        and zo["apply_vs_generator"] >= GOAL_APPLY_VS_GENERATOR
        and large["apply_vs_generator"] >= GOAL_APPLY_VS_GENERATOR
    )
    return {
        "canonical_gaussian_gfloats_per_s": rate["gaussian"],
        "apply_gfloats_per_s": zo["apply_gfloats_per_s"],
        "apply_generator_gfloats_per_s": zo["generator_gfloats_per_s"],
        "apply_vs_generator": zo["apply_vs_generator"],
        "apply_round_s": zo["apply_s"],
        "apply_terms": ZO_SEEDS_PER_MINER * miners,
        "apply_numel": ZO_LAYOUT.numel,
        "apply_large_gfloats_per_s": large["apply_gfloats_per_s"],
        "apply_large_generator_gfloats_per_s": large["generator_gfloats_per_s"],
        "apply_large_vs_generator": large["apply_vs_generator"],
        "apply_large_terms": LARGE_TERMS,
        "apply_large_numel": LARGE_LAYOUT.numel,
        "canonical_rademacher_gfloats_per_s": rate["rademacher"],
        "torch_randn_gfloats_per_s": rate["randn"],
        "axpy_gfloats_per_s": rate["axpy"],
        "gaussian_vs_randn": ratio,
        "lowrank_apply_ms": apply_t["lowrank"] * 1e3,
        "dense_apply_ms": apply_t["dense"] * 1e3,
        "lowrank_apply_speedup": speedup,
        "cross_process_identical": identical,
        "goals_met": goals_met,
        "digest": here,
        "floats": floats,
        "repeats": repeats,
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
    }


def _print_table(results: dict[str, object]) -> None:
    table = Table(title="seedswarm perturbation generator and apply")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("goal", justify="right")
    goals = {
        "gaussian_vs_randn": f">= {GOAL_GAUSSIAN_VS_RANDN:g}x",
        "lowrank_apply_speedup": f">= {GOAL_LOWRANK_SPEEDUP:g}x",
        "apply_vs_generator": f">= {GOAL_APPLY_VS_GENERATOR:g}",
        "apply_large_vs_generator": f">= {GOAL_APPLY_VS_GENERATOR:g}",
        "cross_process_identical": "true",
    }
    for key, value in results.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        table.add_row(key, shown, goals.get(key, ""))
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 if a goal is missed)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--floats", type=int, default=1 << 22, help="floats per generation")
    parser.add_argument("--repeats", type=int, default=9, help="timed repetitions per measure")
    parser.add_argument(
        "--quick", action="store_true", help="8 miners instead of 32 and at most 3 repetitions"
    )
    args = parser.parse_args(argv)
    if args.quick:
        results = run(min(args.floats, 1 << 20), min(args.repeats, 3), miners=8)
    else:
        results = run(args.floats, args.repeats)
    _print_table(results)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if results["goals_met"] is True else 1


if __name__ == "__main__":
    raise SystemExit(main())
