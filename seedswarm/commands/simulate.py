"""`seedswarm simulate`: a whole swarm in one process, to study convergence and compression.

Miners compute (seed, scalar) contributions on the data the protocol assigns them, seal them
exactly as on the wire, and every included contribution is applied by the protocol's apply rule;
the run reports validation loss per round, bytes per miner, and where the time went.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from protocol.errors import SeedswarmError

if TYPE_CHECKING:
    from seedswarm.sim.config import SimConfig
    from seedswarm.sim.report import SimResult


def run_with_progress(config: SimConfig, console: Console) -> SimResult:
    """Run the simulation under rich progress bars (pretraining, if any, then rounds)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from seedswarm.sim.run import simulate
    from seedswarm.sim.swarm import RoundRecord

    columns = (
        TextColumn("[bold]{task.description}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        pretrain_bar = None

        def on_pretrain(step: int, loss: float) -> None:
            nonlocal pretrain_bar
            if pretrain_bar is None:
                pretrain_bar = progress.add_task(
                    "pretrain base", total=config.pretrain_steps, status=""
                )
            progress.update(pretrain_bar, completed=step, status=f"loss {loss:.3f}")

        rounds_bar = progress.add_task("rounds", total=config.rounds, status="")

        def on_round(record: RoundRecord) -> None:
            status = f"val {record.val_loss:.4f}  {record.bytes_per_miner:,.0f} B/miner"
            progress.update(rounds_bar, advance=1, status=status)

        return simulate(config, on_round=on_round, on_pretrain=on_pretrain)


def simulate_command(
    task: Annotated[
        str, typer.Option(help="pycode[:pretrain|:finetune|:docs], text:<path> or synthetic.")
    ] = "pycode:finetune",
    miners: Annotated[int, typer.Option(min=1, help="Honest miners.")] = 8,
    rounds: Annotated[int, typer.Option(min=0, help="Rounds to run.")] = 30,
    codec: Annotated[
        str | None,
        typer.Option(help="fo: local AdamW then projection; zo: SPSA forward passes. "
                     "[default: the network's]"),
    ] = None,
    scalars: Annotated[
        int | None, typer.Option(min=1, help="K: scalars (one byte each) per miner per round. "
                                 "[default: the network's]")
    ] = None,
    trainable: Annotated[
        str | None,
        typer.Option(help="What the swarm trains: full, lora:<rank>, last:<k>. [default: lora:4]"),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of keys, base init and adapters.")] = 0,
    outer_lr: Annotated[
        float | None,
        typer.Option(help="Outer learning rate. [default: the network's, per codec]"),
    ] = None,
    outer_momentum: Annotated[
        float | None,
        typer.Option(help="Nesterov momentum of the outer step, 0 for plain SGD. "
                     "[default: the network's]"),
    ] = None,
    spsa_eps: Annotated[
        float | None, typer.Option(help="SPSA perturbation size (zo). [default: the network's]")
    ] = None,
    samples_per_miner: Annotated[
        int | None,
        typer.Option(min=1, help="Samples per miner per round. [default: the network's]"),
    ] = None,
    local_steps: Annotated[
        int | None, typer.Option(min=1, help="Local AdamW steps (fo). [default: the network's]")
    ] = None,
    local_lr: Annotated[
        float | None,
        typer.Option(help="Local AdamW learning rate (fo). [default: the network's]"),
    ] = None,
    direction: Annotated[
        str | None,
        typer.Option(help="gaussian, rademacher or lowrank. [default: the network's]"),
    ] = None,
    direction_rank: Annotated[
        int | None, typer.Option(min=1, help="Rank of lowrank directions. [default: 1]")
    ] = None,
    base: Annotated[
        str,
        typer.Option(help="auto (pretrain once, cached), scratch, or a checkpoint path."),
    ] = "auto",
    pretrain_steps: Annotated[int, typer.Option(min=0, help="Steps of the auto base.")] = 200,
    width: Annotated[int, typer.Option(min=1, help="Model width (auto/scratch base).")] = 64,
    depth: Annotated[int, typer.Option(min=1, help="Blocks (auto/scratch base).")] = 2,
    scalar_format: Annotated[
        str, typer.Option(help="byte (the wire format) or fp32 (research: unquantized).")
    ] = "byte",
    check_replicas: Annotated[
        bool,
        typer.Option(help="Keep a replica per miner and assert bit-identical hashes each round."),
    ] = False,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Cache for the auto base (default ~/.cache/seedswarm).")
    ] = None,
    scoring: Annotated[
        str,
        typer.Option(help="gauntlet: a validator filters, verifies, scores and certifies the "
                     "top contributions; equal: every well-formed one, equal weights."),
    ] = "gauntlet",
    attackers: Annotated[
        str,
        typer.Option(help="Cheating miners added to the honest ones, KIND=COUNT,... with KIND "
                     "in copycat, free-rider, noise, scaled, stale, desynced, lazy, sign-flip, "
                     "sybil, seed-grinder."),
    ] = "",
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the results as JSON to this file.")
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(help="Write a PNG here: validation and train loss against the base model "
                     "and centralized AdamW on the same data, reward share per miner, bytes "
                     "per round."),
    ] = None,
) -> None:
    """Run a swarm of honest miners in one process and report how it learns.

    With no options: 8 miners fine-tune LoRA adapters of a small base model (pretrained once
    on part of the standard library, then cached) on the stdlib's networking packages, with
    first-order local steps projected on K=1024 shared-random directions per miner.

    Each round is certified by a simulated validator (filters, recomputation of a secret
    sample of scalars, loss deltas, DICE influence, OpenSkill ratings; --scoring equal turns it
    off); the JSON then holds every miner's score receipts and reward share.

    Example: seedswarm simulate --codec zo --scalars 64 --rounds 20 --json out.json
    Example: seedswarm simulate --attackers copycat=2,sign-flip=1 --rounds 10
    """
    from seedswarm.sim.attackers import parse_attackers
    from seedswarm.sim.config import SimConfig
    from seedswarm.sim.report import plot_result, scoring_table, summary_table, write_json
    from training.genesis import ModelShape

    console = Console()
    try:
        config = SimConfig(
            scoring=scoring, attackers=parse_attackers(attackers),
            task=task, miners=miners, rounds=rounds, codec=codec, scalars=scalars,
            seed=seed, outer_lr=outer_lr, outer_momentum=outer_momentum, spsa_eps=spsa_eps,
            direction=direction,
            direction_rank=direction_rank, samples_per_miner=samples_per_miner,
            local_steps=local_steps, local_lr=local_lr, base=base,
            pretrain_steps=pretrain_steps, shape=ModelShape(width=width, depth=depth),
            scalar_format=scalar_format, check_replicas=check_replicas, cache_dir=cache_dir,
        )
        if trainable is not None:
            config = replace(config, trainable=trainable)
        result = run_with_progress(config, console)
    except SeedswarmError as exc:
        console.print(f"[red]simulate failed:[/] {exc}")
        raise typer.Exit(1) from exc
    console.print(summary_table(result))
    if result.loss_rose:
        console.print(
            f"[yellow]warning:[/] validation loss rose ({result.initial_val_loss:.4f} -> "
            f"{result.final_val_loss:.4f}): the swarm did not learn; lower --outer-lr, raise "
            "--scalars or run more --rounds")
    if result.scoring is not None:
        console.print(scoring_table(result))
    if json_path is not None:
        write_json(result, json_path)
        console.print(f"JSON written to {json_path}")
    if plot is not None:
        from seedswarm.sim.reference import adamw_curve

        with console.status("centralized AdamW reference ..."):
            reference = adamw_curve(config)
        plot_result(result, plot, adamw=reference)
        console.print(f"plot written to {plot}")


def register(app: typer.Typer) -> None:
    """Add `seedswarm simulate`."""
    app.command("simulate")(simulate_command)
