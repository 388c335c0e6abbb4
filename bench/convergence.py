"""Convergence and compression of the swarm against centralized baselines, side by side.

``python -m bench.convergence --json PATH [--quick] [--plot PATH]``

Same base model, task, trainable parameters and data budget for every configuration:

(a) ``adamw``: centralized AdamW on the trainable parameters, one step per miner batch of an
    8-miner round (the quality ceiling: first order, no compression, sequential);
(b) ``mezo``: centralized MeZO on one node, one SPSA step per such batch;
(c) ``zo-1`` / ``zo-4`` / ``zo-8``: the zeroth-order swarm, outer rate scaled with the number of
    miners (linear scaling: the round averages N·K directions);
(d) ``fo-8``: the first-order-projection swarm (local AdamW, then K projections per miner);
(e) ``fo-8-fp32``: the same with unquantized scalars, against the one-byte wire format;
(f) ``fo-8-nesterov``: the first-order swarm with the outer step's Nesterov momentum
    (``outer_momentum``, protocol.outer) at its own outer learning rate.

Reported per configuration: final validation loss, rounds to reach the 1-miner ZO swarm's final
loss, bytes per miner per round (real sealed envelopes), compression against a dense fp32
pseudo-gradient, share of the base→ceiling gap closed, and wall time (noisy on a shared
machine: compare ratios).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from protocol.apply import Update, apply_updates_
from protocol.codecs import spsa_scalars
from protocol.layout import ParamLayout
from protocol.netconfig import rule_default
from protocol.perturb import DirectionSpec
from seedswarm.sim.config import SimConfig
from seedswarm.sim.reference import ADAMW_LR, adamw_curve, reference_batches
from seedswarm.sim.report import SimResult, plot_curves
from seedswarm.sim.run import simulate
from training.genesis import build_genesis
from training.model import GPT
from training.pretrain import validation_loss
from training.tasks.task import Batch


@dataclass(frozen=True)
class Plan:
    """What the benchmark runs; ``quick`` shrinks rounds and scalars."""

    rounds: int = 30
    miners: int = 8
    zo_scalars: int = 32
    zo_lr_per_miner: float = 0.4
    fo_scalars: int = 1024
    fo_lr: float = 0.5
    fo_momentum: float = 0.9
    fo_nesterov_lr: float = 0.2
    adamw_lr: float = ADAMW_LR
    mezo_lr: float = 0.025
    pretrain_steps: int = 200
    seed: int = 0

    def sim(self, **overrides: Any) -> SimConfig:
        # Honest convergence is measured with plain equal weights: scoring is bench.incentives'.
        base = SimConfig(
            rounds=self.rounds, pretrain_steps=self.pretrain_steps, seed=self.seed,
            miners=self.miners, scoring="equal",
        )
        return replace(base, **overrides)


QUICK = Plan(rounds=8, zo_scalars=16, fo_scalars=512)


@dataclass
class Record:
    name: str
    curve: list[float]
    wall_s: float
    bytes_per_miner_per_round: float | None
    dense_bytes: int
    rounds_to_target: int | None = None
    gap_closed: float | None = None

    @property
    def final_val_loss(self) -> float:
        return self.curve[-1]

    def to_json(self) -> dict[str, Any]:
        b = self.bytes_per_miner_per_round
        return {
            "name": self.name,
            "final_val_loss": self.final_val_loss,
            "rounds_to_target": self.rounds_to_target,
            "bytes_per_miner_per_round": b,
            "compression_vs_dense": self.dense_bytes / b if b else None,
            "gap_closed": self.gap_closed,
            "wall_s": self.wall_s,
            "val_loss": self.curve,
        }


def _samples(config: SimConfig) -> int:
    """Samples per miner per round of the run's network."""
    return config.samples_per_miner or rule_default("samples_per_miner")


def centralized_adamw(plan: Plan, config: SimConfig) -> Record:
    """(a) AdamW, ``miners`` steps of ``samples_per_miner`` samples per round-equivalent
    (seedswarm.sim.reference, the baseline `seedswarm simulate --plot` draws too)."""
    genesis = build_genesis(config)
    started = time.perf_counter()
    run = replace(config, rounds=plan.rounds, miners=plan.miners, seed=plan.seed)
    curve = adamw_curve(run, lr=plan.adamw_lr, genesis=genesis)
    return Record("adamw", curve, time.perf_counter() - started,
                  4 * genesis.trainable_numel, 4 * genesis.trainable_numel)


def centralized_mezo(plan: Plan, config: SimConfig) -> Record:
    """(b) MeZO on one node: one SPSA seed and update per batch, same batches as AdamW."""
    genesis = build_genesis(config)
    params = [p for _, p in genesis.named]
    layout = ParamLayout.of(genesis.named)
    spec = DirectionSpec()
    eps = config.spsa_eps or rule_default("spsa_eps")
    model = genesis.model.eval()
    started = time.perf_counter()
    curve = [validation_loss(model, genesis.task)]
    batches = reference_batches(genesis, plan.rounds * plan.miners, _samples(config),
                                plan.seed)
    for step, indices in enumerate(batches, start=1):
        seed = plan.seed * 1_000_003 + step
        loss = partial(_loss, model, genesis.task.train_batch(indices))
        with torch.no_grad():
            (g,) = spsa_scalars(loss, params, layout, [seed], eps, spec)
            apply_updates_(params, layout, [Update(seed=seed, coeff=-plan.mezo_lr * g)], spec)
        if step % plan.miners == 0:
            curve.append(validation_loss(model, genesis.task))
    return Record("mezo", curve, time.perf_counter() - started, None,
                  4 * genesis.trainable_numel)


def _loss(model: GPT, batch: Batch) -> float:
    return float(model.loss(batch))


def swarm(name: str, config: SimConfig) -> Record:
    """(c)-(e) a simulated swarm."""
    started = time.perf_counter()
    result: SimResult = simulate(config)
    return Record(name, [result.initial_val_loss, *result.val_loss],
                  time.perf_counter() - started, result.bytes_per_miner_per_round,
                  result.dense_bytes)


def configurations(plan: Plan) -> list[tuple[str, Callable[[], Record]]]:
    zo = plan.sim(codec="zo", scalars=plan.zo_scalars)
    fo = plan.sim(codec="fo", scalars=plan.fo_scalars, outer_lr=plan.fo_lr)
    runs: list[tuple[str, Callable[[], Record]]] = [
        ("adamw", lambda: centralized_adamw(plan, fo)),
        ("mezo", lambda: centralized_mezo(plan, zo)),
    ]
    for n in (1, 4, plan.miners):
        cfg = replace(zo, miners=n, outer_lr=plan.zo_lr_per_miner * n)
        runs.append((f"zo-{n}", partial(swarm, f"zo-{n}", cfg)))
    m = plan.miners
    runs.append((f"fo-{m}", lambda: swarm(f"fo-{m}", fo)))
    fp32 = replace(fo, scalar_format="fp32")
    runs.append((f"fo-{m}-fp32", lambda: swarm(f"fo-{m}-fp32", fp32)))
    nesterov = replace(fo, outer_momentum=plan.fo_momentum, outer_lr=plan.fo_nesterov_lr)
    runs.append((f"fo-{m}-nesterov", lambda: swarm(f"fo-{m}-nesterov", nesterov)))
    return runs


def rounds_to(curve: Sequence[float], target: float) -> int | None:
    """Rounds run until the validation loss first reaches ``target`` (None: never)."""
    return next((r for r, v in enumerate(curve) if r > 0 and v <= target), None)


def score(records: list[Record], miners: int) -> dict[str, Any]:
    """Fill targets and gap closure; return the goal checks."""
    by = {r.name: r for r in records}
    zo1, zo_many, adamw = by["zo-1"], by[f"zo-{miners}"], by["adamw"]
    fo, fp32 = by[f"fo-{miners}"], by[f"fo-{miners}-fp32"]
    base = adamw.curve[0]
    for r in records:
        r.rounds_to_target = rounds_to(r.curve, zo1.final_val_loss)
        gap = base - adamw.final_val_loss
        r.gap_closed = (base - r.final_val_loss) / gap if gap > 0 else None
    swarms = [r for r in records if r.name.startswith(("zo-", "fo-"))]
    best = max(swarms, key=lambda r: r.gap_closed or -math.inf)
    fraction = (
        zo_many.rounds_to_target / (len(zo1.curve) - 1)
        if zo_many.rounds_to_target is not None else None
    )
    return {
        "target_val_loss": zo1.final_val_loss,
        # The speed-up goal only means something if one miner made progress at all.
        "zo1_improved_on_base": zo1.final_val_loss < base,
        f"zo{miners}_rounds_fraction_to_zo1_final": fraction,
        "goal_more_miners_quarter_rounds": zo1.final_val_loss < base
        and fraction is not None and fraction <= 0.25,
        "byte_vs_fp32_relative": (fo.final_val_loss - fp32.final_val_loss) / fp32.final_val_loss,
        "goal_byte_within_2pct": abs(fo.final_val_loss - fp32.final_val_loss)
        <= 0.02 * fp32.final_val_loss,
        "best_swarm": best.name,
        "best_swarm_gap_closed": best.gap_closed,
        "goal_gap_half": (best.gap_closed or 0.0) >= 0.5,
    }


def table(records: list[Record], goals: dict[str, Any]) -> Table:
    t = Table(title=f"convergence (target: zo-1 final loss {goals['target_val_loss']:.4f})")
    for col in ("config", "final val", "rounds→target", "gap closed", "B/miner/round",
                "vs dense fp32", "wall s"):
        t.add_column(col, justify="right" if col != "config" else "left")
    for r in records:
        b = r.bytes_per_miner_per_round
        t.add_row(
            r.name, f"{r.final_val_loss:.4f}",
            "-" if r.rounds_to_target is None else str(r.rounds_to_target),
            "-" if r.gap_closed is None else f"{100 * r.gap_closed:.0f}%",
            "-" if b is None else f"{b:,.0f}",
            "-" if not b else f"{r.dense_bytes / b:,.1f}x",
            f"{r.wall_s:.1f}",
        )
    return t


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write one record per configuration here")
    parser.add_argument("--plot", type=Path, help="PNG of the validation curves")
    parser.add_argument("--quick", action="store_true", help="about a minute instead of ten")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    plan = QUICK if args.quick else Plan()
    console = Console()
    records = []
    for key, run in configurations(plan):
        console.print(f"running {key} ...")
        records.append(run())
    goals = score(records, plan.miners)
    console.print(table(records, goals))
    console.print(goals)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"records": [r.to_json() for r in records], "goals": goals,
                   "plan": plan.__dict__}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    plot = args.plot or (args.json.with_suffix(".png") if args.json else None)
    if plot:
        plot_curves([(r.name, r.curve) for r in records], plot,
                    title="pycode:finetune, lora:4: validation loss per round")


if __name__ == "__main__":
    main()
