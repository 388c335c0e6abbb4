"""Convergence and compression of the swarm against centralized baselines, side by side.

``python -m bench.convergence --json PATH [--quick] [--tasks T,..] [--arms A,..] [--plot PATH]``

Two tasks (``TASKS``), each with the same base model (pretrained once on ``pycode:pretrain``),
trainable parameters and data budget for every arm:

* ``pycode:finetune`` / ``lora:4``: the networking packages of the stdlib, 8,192 adapter
  weights (a small gap: the base already knows Python);
* ``pycode:docs`` / ``full``: the English help text the interpreter ships, every weight
  trainable (a domain the base never saw: a gap of about 0.3 nats).

Arms (``codec`` says which family each is):

* ``adamw`` (codec ``adamw``): centralized AdamW, one step per miner batch of a round, at the
  best of ``adamw_lrs`` (the tuned ceiling every gap is measured against);
* ``adamw-large`` (codec ``adamw-large``): AdamW with the swarm's step count, one step of all
  the round's samples per round, same learning rate;
* ``mezo`` (codec ``mezo``): centralized MeZO, one SPSA step per miner batch;
* ``zo-1`` / ``zo-4`` / ``zo-8``: the zeroth-order swarm, outer rate scaled with the miners;
* ``fo-8``: the first-order-projection swarm; ``fo-8-fp32``: unquantized scalars;
  ``fo-8-nesterov``: the outer step with Nesterov momentum (``outer_momentum``).

Every arm runs once per network id in ``network_ids`` (the id moves the beacon, hence the
seeds and the data assignment; the centralized arms draw their batches with a seed per id).
Reported per arm: the final validation loss (mean over the ids of the mean of the last
``tail`` rounds), the share of the task's base→``adamw`` gap closed, rounds until the mean
curve first closes 50% and 90% of it, bytes per miner per round (real sealed envelopes),
compression against a dense fp32 pseudo-gradient, and wall time (noisy on a shared machine:
compare ratios).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from protocol.apply import Update, apply_updates_
from protocol.codecs import spsa_scalars
from protocol.errors import SeedswarmError
from protocol.layout import ParamLayout
from protocol.netconfig import NetworkConfig, rule_default
from protocol.perturb import DirectionSpec
from seedswarm.sim.config import SimConfig
from seedswarm.sim.reference import adamw_curve, reference_batches
from seedswarm.sim.report import plot_curves
from seedswarm.sim.run import simulate
from seedswarm.sim.swarm import RoundRecord
from training.genesis import build_genesis
from training.model import GPT
from training.pretrain import validation_loss
from training.tasks.task import Batch


@dataclass(frozen=True)
class TaskPlan:
    """One task of the benchmark and what trains on it."""

    task: str
    trainable: str

    @property
    def label(self) -> str:
        return f"{self.task} / {self.trainable}"


TASKS = (TaskPlan("pycode:finetune", "lora:4"), TaskPlan("pycode:docs", "full"))


@dataclass(frozen=True)
class Plan:
    """What the benchmark runs; ``QUICK`` shrinks rounds and scalars."""

    rounds: int = 30
    miners: int = 8
    network_ids: tuple[str, ...] = ("bench-a", "bench-b")
    tail: int = 5
    zo_scalars: int = 32
    zo_lr_per_miner: float = 0.4
    fo_scalars: int = 1024
    fo_lr: float = 0.5
    fo_momentum: float = 0.9
    fo_nesterov_lr: float = 0.2
    adamw_lrs: tuple[float, ...] = (3e-3, 1e-2)
    mezo_lr: float = 0.025
    pretrain_steps: int = 200
    tasks: tuple[TaskPlan, ...] = TASKS
    base: str = "auto"

    def sim(self, task: TaskPlan, network_id: str, **overrides: Any) -> SimConfig:
        # Honest convergence is measured with plain equal weights: scoring is bench.incentives'.
        base = SimConfig(
            task=task.task, trainable=task.trainable, rounds=self.rounds,
            pretrain_steps=self.pretrain_steps, miners=self.miners, scoring="equal",
            network_id=network_id, base=self.base,
        )
        return replace(base, **overrides)


QUICK = Plan(rounds=8, zo_scalars=16, fo_scalars=512, tail=3)


@dataclass
class Record:
    """One arm on one task: a validation curve per network id (index 0 = the base model)."""

    name: str
    codec: str
    task: str
    trainable: str
    curves: list[list[float]]
    wall_s: float
    bytes_per_miner_per_round: float | None
    dense_bytes: int
    lr: float | None = None
    tail: int = 5
    gap_closed: float | None = None
    rounds_to_50: int | None = None
    rounds_to_90: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rounds(self) -> int:
        return len(self.curves[0]) - 1

    @property
    def base_val_loss(self) -> float:
        return statistics.fmean(c[0] for c in self.curves)

    @property
    def mean_curve(self) -> list[float]:
        return [statistics.fmean(values) for values in zip(*self.curves, strict=True)]

    @property
    def final_val_loss(self) -> float:
        """Mean over the network ids of the mean of the last ``tail`` rounds."""
        k = max(1, min(self.tail, self.rounds))
        return statistics.fmean(statistics.fmean(c[-k:]) for c in self.curves)

    def to_json(self) -> dict[str, Any]:
        b = self.bytes_per_miner_per_round
        return {
            "name": self.name, "codec": self.codec, "task": self.task,
            "trainable": self.trainable, "rounds": self.rounds,
            "final_val_loss": _finite(self.final_val_loss), "gap_closed": self.gap_closed,
            "rounds_to_50pct": self.rounds_to_50, "rounds_to_90pct": self.rounds_to_90,
            "bytes_per_miner_per_round": b,
            "compression_vs_dense": self.dense_bytes / b if b else None,
            "lr": self.lr, "wall_s": self.wall_s,
            "val_loss": [_finite(v) for v in self.mean_curve],
            "val_loss_per_network": [[_finite(v) for v in c] for c in self.curves],
            **self.extra,
        }


def _finite(value: float) -> float | None:
    """JSON has no NaN: a diverged value is null."""
    return value if math.isfinite(value) else None


def _samples(config: SimConfig) -> int:
    """Samples per miner per round of the run's network."""
    return config.samples_per_miner or rule_default("samples_per_miner")


def _batch_seed(plan: Plan, network_id: str) -> int:
    return plan.network_ids.index(network_id)


def adamw_runs(plan: Plan, task: TaskPlan) -> list[Record]:
    """``adamw`` at each of ``adamw_lrs`` (the best is the ceiling) and ``adamw-large``."""
    by_lr: dict[float, Record] = {}
    for lr in plan.adamw_lrs:
        curves, started = [], time.perf_counter()
        for net in plan.network_ids:
            config = plan.sim(task, net, seed=_batch_seed(plan, net))
            genesis = build_genesis(config)
            curves.append(adamw_curve(config, lr=lr, genesis=genesis))
        numel = 4 * genesis.trainable_numel
        by_lr[lr] = Record("adamw", "adamw", task.task, task.trainable, curves,
                           time.perf_counter() - started, numel, numel, lr=lr, tail=plan.tail)
    best = min(by_lr.values(), key=lambda r: r.final_val_loss)
    best.extra["adamw_lr_sweep"] = {str(lr): r.final_val_loss for lr, r in by_lr.items()}
    curves, started = [], time.perf_counter()
    for net in plan.network_ids:
        config = plan.sim(task, net, seed=_batch_seed(plan, net))
        curves.append(large_batch_adamw(config, plan, best.lr or plan.adamw_lrs[0]))
    large = Record("adamw-large", "adamw-large", task.task, task.trainable, curves,
                   time.perf_counter() - started, best.dense_bytes, best.dense_bytes,
                   lr=best.lr, tail=plan.tail)
    return [best, large]


def large_batch_adamw(config: SimConfig, plan: Plan, lr: float) -> list[float]:
    """AdamW with the swarm's step count: one step per round on all of the round's samples."""
    genesis = build_genesis(config)
    params = [p for _, p in genesis.named]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    curve = [validation_loss(genesis.model, genesis.task)]
    batches = reference_batches(genesis, plan.rounds, plan.miners * _samples(config),
                                config.seed)
    genesis.model.train()
    for indices in batches:
        optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(genesis.model.loss(genesis.task.train_batch(indices)))
        optimizer.step()
        curve.append(validation_loss(genesis.model, genesis.task))
    return curve


def mezo_run(plan: Plan, task: TaskPlan) -> Record:
    """MeZO on one node: one SPSA seed and update per miner batch, per network id."""
    curves, started = [], time.perf_counter()
    for net in plan.network_ids:
        config = plan.sim(task, net, seed=_batch_seed(plan, net), codec="zo")
        genesis = build_genesis(config)
        params = [p for _, p in genesis.named]
        layout = ParamLayout.of(genesis.named)
        spec = DirectionSpec()
        eps = rule_default("spsa_eps")
        model = genesis.model.eval()
        curve = [validation_loss(model, genesis.task)]
        batches = reference_batches(genesis, plan.rounds * plan.miners, _samples(config),
                                    config.seed)
        for step, indices in enumerate(batches, start=1):
            seed = config.seed * 1_000_003 + step
            loss = partial(_loss, model, genesis.task.train_batch(indices))
            with torch.no_grad():
                (g,) = spsa_scalars(loss, params, layout, [seed], eps, spec)
                apply_updates_(params, layout, [Update(seed=seed, coeff=-plan.mezo_lr * g)],
                               spec)
            if step % plan.miners == 0:
                curve.append(validation_loss(model, genesis.task))
        curves.append(curve)
    return Record("mezo", "mezo", task.task, task.trainable, curves,
                  time.perf_counter() - started, None, 4 * genesis.trainable_numel,
                  lr=plan.mezo_lr, tail=plan.tail)


def _loss(model: GPT, batch: Batch) -> float:
    return float(model.loss(batch))


def swarm_run(name: str, plan: Plan, task: TaskPlan, **overrides: Any) -> Record:
    """A simulated swarm, once per network id. A run whose model diverges (a non-finite
    scalar) keeps its curve so far, padded with NaN, and is marked ``diverged``."""
    curves, sizes, started = [], [], time.perf_counter()
    diverged: list[str] = []
    network: NetworkConfig | None = None
    dense = 0
    for net in plan.network_ids:
        config = plan.sim(task, net, **overrides)
        records: list[RoundRecord] = []
        try:
            result = simulate(config, on_round=records.append)
        except SeedswarmError:
            if not records:
                raise  # not a divergence: the run never started
            diverged.append(net)
            genesis = build_genesis(config)
            base = validation_loss(genesis.model, genesis.task)
            curve = [base, *(r.val_loss for r in records)]
            curves.append(curve + [math.nan] * (config.rounds + 1 - len(curve)))
            sizes += [r.bytes_per_miner for r in records]
            continue
        network, dense = result.network, result.dense_bytes
        curves.append([result.initial_val_loss, *result.val_loss])
        sizes.append(result.bytes_per_miner_per_round)
    config = plan.sim(task, plan.network_ids[0], **overrides)
    return Record(name, (config.codec or "fo"), task.task, task.trainable, curves,
                  time.perf_counter() - started, statistics.fmean(sizes) if sizes else None,
                  dense or 4 * build_genesis(config).trainable_numel,
                  lr=network.outer_lr if network else config.outer_lr, tail=plan.tail,
                  extra={"scalars": config.scalars,
                         "outer_momentum": config.outer_momentum or 0.0,
                         "scalar_format": config.scalar_format, "diverged": diverged})


Arm = Callable[[], list[Record]]


def arms(plan: Plan, task: TaskPlan) -> list[tuple[str, Arm]]:
    """The arms of one task, by name (``adamw`` also yields ``adamw-large``)."""
    m = plan.miners
    zo = {"codec": "zo", "scalars": plan.zo_scalars}
    fo = {"codec": "fo", "scalars": plan.fo_scalars, "outer_lr": plan.fo_lr}
    out: list[tuple[str, Arm]] = [
        ("adamw", lambda: adamw_runs(plan, task)),
        ("mezo", lambda: [mezo_run(plan, task)]),
    ]
    for n in (1, 4, m):
        out.append((f"zo-{n}", partial(_one, f"zo-{n}", plan, task, miners=n,
                                       outer_lr=plan.zo_lr_per_miner * n, **zo)))
    out.append((f"fo-{m}", partial(_one, f"fo-{m}", plan, task, **fo)))
    out.append((f"fo-{m}-fp32", partial(_one, f"fo-{m}-fp32", plan, task,
                                        scalar_format="fp32", **fo)))
    nesterov = {**fo, "outer_lr": plan.fo_nesterov_lr, "outer_momentum": plan.fo_momentum}
    out.append((f"fo-{m}-nesterov", partial(_one, f"fo-{m}-nesterov", plan, task, **nesterov)))
    return out


def _one(name: str, plan: Plan, task: TaskPlan, **overrides: Any) -> list[Record]:
    return [swarm_run(name, plan, task, **overrides)]


def rounds_to(curve: Sequence[float], target: float) -> int | None:
    """Rounds run until the validation loss first reaches ``target`` (None: never)."""
    return next((r for r, v in enumerate(curve) if r > 0 and v <= target), None)


def score_task(records: list[Record], miners: int) -> dict[str, Any]:
    """Fill each record's gap closure and rounds to 50% / 90%; the task's figures."""
    ceiling = next((r for r in records if r.name == "adamw"), None)
    base = statistics.fmean(r.base_val_loss for r in records)
    gap = base - ceiling.final_val_loss if ceiling is not None else math.nan
    for r in records:
        if gap > 0 and math.isfinite(r.final_val_loss):
            r.gap_closed = (r.base_val_loss - r.final_val_loss) / gap
            r.rounds_to_50 = rounds_to(r.mean_curve, r.base_val_loss - 0.5 * gap)
            r.rounds_to_90 = rounds_to(r.mean_curve, r.base_val_loss - 0.9 * gap)
    by = {r.name: r for r in records}
    figures: dict[str, Any] = {"base_val_loss": base, "adamw_gap_nats": gap,
                               "adamw_lr": ceiling.lr if ceiling else None}
    swarms = [r for r in records if r.codec in ("fo", "zo")]
    if swarms:
        best = max(swarms, key=lambda r: r.gap_closed if r.gap_closed is not None else -1e9)
        figures.update(best_swarm=best.name, best_swarm_gap_closed=best.gap_closed)
    fo, fp32 = by.get(f"fo-{miners}"), by.get(f"fo-{miners}-fp32")
    if fo and fp32:
        rel = (fo.final_val_loss - fp32.final_val_loss) / fp32.final_val_loss
        figures.update(byte_vs_fp32_relative=rel, goal_byte_within_2pct=abs(rel) <= 0.02)
    return figures


def table(task: TaskPlan, records: list[Record], figures: dict[str, Any]) -> Table:
    gap = figures["adamw_gap_nats"]
    t = Table(title=f"{task.label}: base {figures['base_val_loss']:.4f}, "
                    f"AdamW gap {gap:.4f} nats (lr {figures['adamw_lr']})")
    for col in ("arm", "codec", "final val", "gap closed", "r→50%", "r→90%", "B/miner/round",
                "vs dense fp32", "wall s"):
        t.add_column(col, justify="left" if col in ("arm", "codec") else "right")
    for r in records:
        b = r.bytes_per_miner_per_round
        t.add_row(
            r.name, r.codec, f"{r.final_val_loss:.4f}",
            "diverged" if r.extra.get("diverged") else
            "-" if r.gap_closed is None else f"{100 * r.gap_closed:.0f}%",
            "-" if r.rounds_to_50 is None else str(r.rounds_to_50),
            "-" if r.rounds_to_90 is None else str(r.rounds_to_90),
            "-" if b is None else f"{b:,.0f}",
            "-" if not b else f"{r.dense_bytes / b:,.1f}x",
            f"{r.wall_s:.1f}",
        )
    return t


def run(plan: Plan, *, task_names: Sequence[str] | None, arm_names: Sequence[str] | None,
        console: Console) -> tuple[list[Record], dict[str, Any]]:
    """Every selected arm on every selected task; the records and the per-task figures."""
    records: list[Record] = []
    figures: dict[str, Any] = {}
    for task in plan.tasks:
        if task_names and task.task not in task_names:
            continue
        mine: list[Record] = []
        for name, arm in arms(plan, task):
            if arm_names and name not in arm_names and name != "adamw":
                continue  # the ceiling always runs: every gap is measured against it
            console.print(f"running {task.label}: {name} ...")
            mine += arm()
        figures[task.task] = score_task(mine, plan.miners)
        console.print(table(task, mine, figures[task.task]))
        records += mine
    return records, figures


def _names(text: str | None) -> list[str] | None:
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write {records, figures, plan} here")
    parser.add_argument("--plot", type=Path, help="PNG of the mean validation curves")
    parser.add_argument("--quick", action="store_true", help="8 rounds and fewer scalars")
    parser.add_argument("--tasks", help="comma-separated task specs (default: all of TASKS)")
    parser.add_argument("--arms", help="comma-separated arm names (default: all; adamw always)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    plan = QUICK if args.quick else Plan()
    console = Console()
    records, figures = run(plan, task_names=_names(args.tasks), arm_names=_names(args.arms),
                           console=console)
    console.print(figures)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"records": [r.to_json() for r in records], "figures": figures,
                   "plan": asdict(plan)}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    plot = args.plot or (args.json.with_suffix(".png") if args.json else None)
    if plot:
        plot_curves([(f"{r.task} {r.name}", r.mean_curve) for r in records], plot,
                    title="validation loss per round (mean over network ids)")


if __name__ == "__main__":
    main()
