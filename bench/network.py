"""Benchmark of the live network on loopback: 16 libp2p nodes running the real services.

    python -m bench.network [--json PATH] [--mode processes|inprocess|both] [--nodes 16]
                            [--rounds 6] [--round-length 3] [--probes 8]
                            [--certifier scoring|equal] [--absent 1]

One validator and 15 miners run `ValidatorService` / `MinerService` (TCP + Noise + Yamux,
GossipSub) on the devnet's tiny model for a few rounds, then every node publishes timestamped
probes. The validator runs the devnet's scoring pipeline (`--certifier scoring`, the headline;
`equal` certifies equal weights without scoring). `processes` runs each node as its own OS
process (`python -m bench.network_node`), as a deployment would; `inprocess` runs all of them
as tasks of one process sharing one trio run, the old layout, kept as the same-run baseline.
Scenarios, in this order: full participation in the first layout (the headline: its figures
are the JSON's top-level keys), the same with `--absent` registered miners that never run
(round 0 waits for them until the deadline, since the validator has heard nobody yet; from
round 1 it no longer expects miners it has not heard from lately, see
validator.service.pool.expected), and with `both` (default) the in-process baseline; the
others go under `scenarios` and the table shows ratios to the headline. Nodes wait for their
GossipSub mesh (>= 4 peers) on the probe and certificate topics before genesis, so mesh
formation is not measured. Measured:

* gossip propagation latency: the publisher stamps time.time_ns() (one host clock), every
  other node records the arrival; p50 / p99 over all (publisher, receiver, probe) triples,
  one probe in flight network-wide (contributions trickle in; bursts would measure
  py-libp2p's throughput ceiling instead);
* bytes on the wire per miner per round, counted at the socket (py-libp2p's TCP stream
  reads and writes, bench.network_wire) between genesis and the last round;
* round overhead, as the issue defines it: from the miner's own work deadline until it holds
  the next round's certified model (applied and checkpointed; 0 when that came before the
  deadline, a round closed early), plus publishing its contribution, over the round length;
  its decomposition into validator wake, scoring, validator driver, validator apply, seal,
  gossip, finality and wake, miner apply and checkpoint (bench.network_stats); and how many
  rounds were scored and certified before their deadline.
  Why this definition: a miner computes only on a certified model, so every second between
  the deadline and holding the next model is a second it cannot compute in; the decomposition
  shows which protocol step those seconds belong to.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.network_barrier import release
from bench.network_node import BASE_FILE, NETWORK_FILE, NodePlan, run_node
from bench.network_stats import summarise

GOAL_P99_MS = 50.0
GOAL_OVERHEAD = 0.05
GENESIS_MARGIN_S = 3.0
PROBE_MARGIN_S = 1.0


def _plan(workdir: Path, args: argparse.Namespace, absent: int) -> NodePlan:
    from adapters.transport.mqtt_broker import free_loopback_port
    from seedswarm.devnet.devnet_genesis import network_config, write_base
    from seedswarm.devnet.spec import DevnetSpec

    # the absent miners are registered (membership, data assignment) but never started
    spec = DevnetSpec(miners=args.nodes - 1 + absent, rounds=args.rounds,
                      round_length=args.round_length)
    network = network_config(spec, write_base(spec, workdir / BASE_FILE)[0])
    (workdir / NETWORK_FILE).write_text(network.to_toml(), encoding="utf-8")
    names = ("validator", *(f"miner-{i}" for i in range(args.nodes - 1)))
    return NodePlan(names=names, ports=tuple(free_loopback_port() for _ in names),
                    workdir=str(workdir), rounds=args.rounds,
                    round_length=args.round_length, probes=args.probes,
                    probe_spacing_s=args.probe_spacing, certifier=args.certifier,
                    stage_timeout_s=args.stage_timeout, absent=absent)


async def _coordinate(plan: NodePlan, check: Callable[[], None]) -> None:
    """Release the nodes' barriers: genesis once all are meshed, probes once all are done."""
    barrier, names, timeout = plan.directory / "barrier", plan.names, plan.stage_timeout_s
    await release(barrier, "ready", names, lambda: {"genesis": time.time() + GENESIS_MARGIN_S},
                  2 * timeout, check)  # a node gives up on its own after `timeout`
    rounds_s = GENESIS_MARGIN_S + (plan.rounds + 4) * plan.round_length
    await release(barrier, "rounds", names,
                  lambda: {"probe_start": time.time() + PROBE_MARGIN_S}, rounds_s, check)
    await release(barrier, "probed", names, dict, timeout, check)


def _run_processes(plan: NodePlan) -> list[dict[str, Any]]:
    plan_file = plan.directory / "plan.json"
    plan.save(plan_file)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    (plan.directory / "logs").mkdir(exist_ok=True)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in plan.names:
            with (plan.directory / "logs" / f"{name}.log").open("wb") as log:
                procs[name] = subprocess.Popen(
                    [sys.executable, "-m", "bench.network_node", str(plan_file), name],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)

        def check() -> None:
            for name, proc in procs.items():
                if proc.poll() is not None and proc.returncode != 0:
                    tail = (plan.directory / "logs" / f"{name}.log").read_text(errors="replace")
                    raise RuntimeError(f"{name} exited {proc.returncode}:\n{tail[-3000:]}")

        asyncio.run(_coordinate(plan, check))
        for proc in procs.values():
            proc.wait(timeout=plan.stage_timeout_s)
        check()
    except Exception:
        for name in plan.names:
            tail = (plan.directory / "logs" / f"{name}.log").read_text(errors="replace")
            Console(stderr=True).print(f"--- {name} ---\n{tail[-1500:]}", markup=False)
        raise
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return [json.loads(plan.result_file(n).read_text(encoding="utf-8")) for n in plan.names]


def _run_inprocess(plan: NodePlan) -> list[dict[str, Any]]:
    from bench.network_wire import install_counters

    counters = install_counters()

    async def everything() -> list[dict[str, Any]]:
        async with asyncio.TaskGroup() as group:
            nodes = [group.create_task(run_node(plan, n, counters)) for n in plan.names]
            group.create_task(_coordinate(plan, lambda: None))
        return [task.result() for task in nodes]

    return asyncio.run(everything())


def run_mode(mode: str, args: argparse.Namespace, *, absent: int = 0) -> dict[str, Any]:
    """Run one layout in a fresh directory, with `absent` registered miners that never run;
    its summary."""
    with tempfile.TemporaryDirectory(prefix=f"bench-network-{mode}-") as tmp:
        plan = _plan(Path(tmp), args, absent)
        started = time.monotonic()
        results = _run_processes(plan) if mode == "processes" else _run_inprocess(plan)
        summary = summarise(results, rounds=plan.rounds, round_length=plan.round_length,
                            probes=plan.probes)
    summary["mode"] = mode
    summary["absent_miners"] = absent
    summary["wall_s"] = time.monotonic() - started
    return summary


@dataclass(frozen=True)
class Scenario:
    """One run of the bench: a process layout and how many registered miners stay away."""

    mode: str
    absent: int = 0

    @property
    def key(self) -> str:
        return self.mode if not self.absent else f"{self.mode}_absent_{self.absent}"

    @property
    def label(self) -> str:
        return self.mode if not self.absent else f"{self.mode}, {self.absent} absent"


def scenarios(mode: str, absent: int) -> tuple[Scenario, ...]:
    """The headline (full participation, first layout) first, then the absent-miner run in
    the same layout, then the in-process baseline."""
    layouts = ("processes", "inprocess") if mode == "both" else (mode,)
    runs = [Scenario(layouts[0])]
    if absent:
        runs.append(Scenario(layouts[0], absent))
    runs += [Scenario(layout) for layout in layouts[1:]]
    return tuple(runs)


ROWS = (
    ("gossip p50 (ms)", "gossip_p50_ms", None),
    ("gossip p99 (ms)", "gossip_p99_ms", GOAL_P99_MS),
    ("gossip delivery ratio", "gossip_delivery_ratio", None),
    ("wire bytes sent / miner / round", "wire_bytes_per_miner_per_round", None),
    ("wire bytes recv / miner / round", "wire_bytes_received_per_miner_per_round", None),
    ("wire bytes sent / validator / round", "wire_bytes_validator_per_round", None),
    ("round overhead fraction (mean)", "round_overhead_fraction", GOAL_OVERHEAD),
    ("round overhead fraction (p90)", "round_overhead_p90", None),
    ("certificate wait after deadline p50 (s)", "certificate_wait_s_p50", None),
    ("share of miner-rounds waiting 0", "zero_wait_share", None),
    ("rounds certified", "rounds_certified", None),
    ("rounds scored before the deadline", "rounds_scored_early", None),
    ("rounds certified before the deadline", "rounds_closed_early", None),
    ("compute per round p50 (s)", "compute_s_p50", None),
    ("validator follow (apply+save) mean (s)", "validator_follow_s_mean", None),
    ("validator books mean (s)", "validator_books_s_mean", None),
    ("late contributions", "late_contributions", None),
    ("distinct final model hashes", "distinct_final_hashes", None),
    ("min mesh degree at genesis", "min_mesh_at_ready", None),
)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def _ratio(a: Any, b: Any) -> str:
    numbers = isinstance(a, int | float) and isinstance(b, int | float)
    return f"{a / b:.2f}x" if numbers and b else "-"


def _comparisons(runs: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(column title, numerator run, denominator run) of the ratio columns that apply."""
    out = []
    absent = next((k for k, r in runs.items() if r.get("absent_miners")), None)
    headline = next(iter(runs))
    if absent is not None:
        out.append((f"{runs[absent]['absent_miners']} absent / full", absent, headline))
    if "processes" in runs and "inprocess" in runs:
        out.append(("processes / inprocess", "processes", "inprocess"))
    return out


def tables(result: dict[str, Any]) -> list[Table]:
    """Every scenario side by side with the ratios, and the overhead decomposition."""
    runs: dict[str, dict[str, Any]] = {result["headline_scenario"]: result,
                                       **result["scenarios"]}
    labels = result["scenario_labels"]
    title = (f"network: {result['nodes']} libp2p nodes on loopback, {result['rounds']} rounds "
             f"of {result['round_length_s']} s, certifier {result['certifier']} "
             f"(shared, noisy machine: compare ratios)")
    main = Table(title=title)
    main.add_column("measure")
    for key in runs:
        main.add_column(labels[key], justify="right")
    comparisons = _comparisons(runs)
    for column, *_ in comparisons:
        main.add_column(column, justify="right")
    main.add_column("goal", justify="right")
    for label, key, goal in ROWS:
        cells = [_fmt(r.get(key)) for r in runs.values()]
        cells += [_ratio(runs[a].get(key), runs[b].get(key)) for _, a, b in comparisons]
        main.add_row(label, *cells, "" if goal is None else f"<= {goal}")
    parts = Table(title="round overhead decomposition (mean s after the work deadline per "
                        "miner and round; share of the round)")
    parts.add_column("part")
    for key in runs:
        parts.add_column(f"{labels[key]} s", justify="right")
        parts.add_column("share", justify="right")
    length = float(result["round_length_s"])
    for part in result["overhead_decomposition_s"]:
        cells = []
        for run in runs.values():
            value = run["overhead_decomposition_s"].get(part)
            cells += [_fmt(value), "-" if value is None else f"{value / length:.2%}"]
        parts.add_row(part, *cells)
    return [main, parts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--mode", choices=("processes", "inprocess", "both"), default="both")
    parser.add_argument("--nodes", type=int, default=16, help="running nodes (1 validator)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--round-length", type=int, default=3)
    parser.add_argument("--probes", type=int, default=8, help="probes per node")
    parser.add_argument("--probe-spacing", type=float, default=0.1,
                        help="seconds between two probes network-wide")
    parser.add_argument("--certifier", choices=("scoring", "equal"), default="scoring",
                        help="the devnet's scoring validator, or equal weights (no scoring)")
    parser.add_argument("--absent", type=int, default=1,
                        help="registered miners that never run, in a second scenario "
                             "(they hold round 0 open until the deadline); 0 skips it")
    parser.add_argument("--stage-timeout", type=float, default=180.0,
                        help="seconds a node may take to start up or drain")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    runs = scenarios(args.mode, args.absent)
    summaries = {run.key: run_mode(run.mode, args, absent=run.absent) for run in runs}
    headline = runs[0].key
    result: dict[str, Any] = {
        "rounds": args.rounds, "round_length_s": args.round_length, "certifier": args.certifier,
        "goals": {"gossip_p99_ms": GOAL_P99_MS, "round_overhead_fraction": GOAL_OVERHEAD},
        "headline_scenario": headline,
        **summaries[headline],
        "scenarios": {k: v for k, v in summaries.items() if k != headline},
        "scenario_labels": {run.key: run.label for run in runs},
    }
    console = Console(width=max(Console().width, 150))  # six columns of figures side by side
    for table in tables(result):
        console.print(table)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
