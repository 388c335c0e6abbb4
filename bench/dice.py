"""DICE estimators versus counterfactual ground truth on the decentralized-SGD testbed.

    python -m bench.dice [--json PATH] [--quick]

For ring and exponential topologies (16 nodes) and for exact-gradient SGD and seed-based SPSA
updates, prints per hop the Pearson / Spearman correlation between ground truth (re-runs
without one node's round) and each estimator, the mean |influence| per receiver (decay with
hops), and whether the node with permuted labels is the most harmful source. The ground-truth
re-runs are the baseline: the ratio column is estimator time / ground-truth time.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from bench.dice_testbed.analysis import find_outlier, summarize
from bench.dice_testbed.data import DataSpec
from bench.dice_testbed.experiment import DiceConfig, Record, run_testbed
from bench.dice_testbed.toy_swarm import Mode

PERMUTED = (5,)
SPSA_LR = 0.002  # SPSA steps move along sqrt(d)-long directions: a much smaller lr than SGD's


def configs(quick: bool) -> list[DiceConfig]:
    """The runs: DICE's 512 samples per node unless ``quick``."""
    data = DataSpec(per_node=128, validation=256) if quick else DataSpec(per_node=512,
                                                                          validation=1024)
    base = DiceConfig(data=data, warmup=60 if quick else 200, measure=4 if quick else 10,
                         hidden=16 if quick else 32, permuted=PERMUTED)
    out = []
    for topology in ("ring", "exponential"):
        out.append(replace(base, topology=topology, mode=Mode.SGD, lr=0.05))
        out.append(replace(base, topology=topology, mode=Mode.SPSA, lr=SPSA_LR))
    return out


def outlier_config(config: DiceConfig, quick: bool) -> DiceConfig:
    """SPSA's per-seed influence is noise-dominated (SNR ~ |cos(g_train, g_val)|): detecting
    the bad node needs many rounds, so it gets a longer, one-hop run of its own."""
    if config.mode is Mode.SGD:
        return config
    return replace(config, hops=1, measure=20 if quick else 40)


def run_one(config: DiceConfig, quick: bool) -> dict[str, Any]:
    start = time.perf_counter()
    records = run_testbed(config)
    seconds = time.perf_counter() - start
    hops = [summarize(records, (s,)) for s in range(config.hops + 1)]
    one_hop = summarize(records, (0, 1))
    out_cfg = outlier_config(config, quick)
    out_records: list[Record] = records if out_cfg is config else run_testbed(out_cfg)
    outlier = find_outlier(out_records, PERMUTED)
    return {
        "topology": config.topology,
        "mode": config.mode.value,
        "lr": config.lr,
        "seconds": seconds,
        "hops": [asdict(h) for h in hops],
        "one_hop_total": asdict(one_hop),
        "outlier": {"expected": list(outlier.expected), "most_harmful": outlier.most_harmful,
                    "detected": outlier.detected, "rounds": out_cfg.measure},
        "decays": all(hops[s].mean_abs["truth"] > hops[s + 1].mean_abs["truth"]
                      for s in range(1, config.hops)),
    }


def render(results: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="DICE estimate vs counterfactual ground truth (16 nodes, fp64)")
    for col in ("topology", "mode", "hops", "points", "Pearson exact", "Pearson fd/seed",
                "Spearman fd/seed", "mean|GT|", "outlier"):
        table.add_column(col, no_wrap=True)
    for res in results:
        for h in [*res["hops"], res["one_hop_total"]]:
            label = "0+1" if len(h["hops"]) > 1 else str(h["hops"][0])
            cheap = next(n for n in h["pearson"] if n != "exact")
            table.add_row(res["topology"], res["mode"], label, str(h["points"]),
                          f"{h['pearson']['exact']:.4f}", f"{h['pearson'][cheap]:.4f}",
                          f"{h['spearman'][cheap]:.4f}", f"{h['mean_abs']['truth']:.3g}",
                          "detected" if res["outlier"]["detected"] else "MISSED")
    console.print(table)
    console.print("hops 0 = self term, 0+1 = DICE Def. 2 one-hop influence; mean|GT| per "
                  "(source, receiver) pair.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--quick", action="store_true", help="test-suite sizes (seconds)")
    args = parser.parse_args(argv)
    # The models are tiny: intra-op threads only add spin-wait overhead (20x CPU on a busy box).
    torch.set_num_threads(1)
    console = Console(width=140)
    results = [run_one(cfg, args.quick) for cfg in configs(args.quick)]
    render(results, console)
    for res in results:
        console.print(f"{res['topology']:12} {res['mode']:5} outlier: {res['outlier']}"
                      f"  decays with hops: {res['decays']}  ({res['seconds']:.1f} s)")
    if args.json:
        args.json.write_text(json.dumps({"results": results}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
