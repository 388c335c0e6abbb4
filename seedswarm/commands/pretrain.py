"""`seedswarm pretrain`: train the base model a swarm fine-tunes, centrally, with AdamW.

The checkpoint it writes (safetensors + metadata) is identified by its model hash. It is a base
model, not yet a genesis: a network's genesis hash covers what trains (the trainable spec's
tensors, adapters included), and `seedswarm network create --base CHECKPOINT --trainable SPEC`
computes it and writes the genesis checkpoint that agrees with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from protocol.domain_types import ModelHash
from protocol.errors import SeedswarmError

if TYPE_CHECKING:
    from training.pretrain import PretrainConfig, PretrainHistory

DEFAULT_OUT = Path("runs/pretrain/base.safetensors")


def run_with_progress(config: PretrainConfig, console: Console) -> tuple[Any, ModelHash, Any]:
    """Run ``pretrain`` with a rich progress bar showing the training loss."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from training.pretrain import pretrain

    columns = (
        TextColumn("[bold]pretrain[/] {task.fields[task_spec]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("pretrain", total=config.steps, task_spec=config.task, loss="-")

        def advance(step: int, loss: float) -> None:
            progress.update(bar, completed=step, loss=f"{loss:.3f}")

        return pretrain(config, progress=advance)


def summary(
    config: PretrainConfig, history: PretrainHistory, digest: ModelHash, out: Path
) -> dict[str, Any]:
    """The run's figures as a JSON-ready dict."""
    return {
        "task": config.task,
        "steps": config.steps,
        "val_loss_before": history.val_loss_before,
        "val_loss_after": history.val_loss_after,
        "seconds": history.seconds,
        "num_parameters": history.num_parameters,
        "model_hash": digest.hex(),
        "task_fingerprint": history.task_fingerprint,
        "checkpoint": str(out),
    }


def print_summary(data: dict[str, Any], console: Console) -> None:
    table = Table(title="pretraining done", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("task", data["task"])
    table.add_row("parameters", f"{data['num_parameters']:,}")
    losses = f"{data['val_loss_before']:.4f} → {data['val_loss_after']:.4f}"
    table.add_row("validation loss (nats/byte)", losses)
    table.add_row("time", f"{data['seconds']:.1f} s for {data['steps']} steps")
    table.add_row("checkpoint", data["checkpoint"])
    table.add_row("base model hash", data["model_hash"])
    table.add_row("next", "seedswarm network create --base " + data["checkpoint"]
                  + " --out NET  (fixes the genesis for a trainable spec)")
    table.add_row("task fingerprint", data["task_fingerprint"])
    console.print(table)


def pretrain_command(
    task: Annotated[
        str, typer.Option(help="pycode[:pretrain|:finetune|:docs], text:<path> or synthetic.")
    ] = "pycode:pretrain",
    steps: Annotated[int, typer.Option(min=0, help="Optimizer steps.")] = 500,
    out: Annotated[Path, typer.Option(help="Where to write the checkpoint.")] = DEFAULT_OUT,
    batch_size: Annotated[int, typer.Option(min=1, help="Samples per step.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak AdamW learning rate.")] = 3e-3,
    width: Annotated[int, typer.Option(min=1, help="Model width.")] = 128,
    depth: Annotated[int, typer.Option(min=1, help="Transformer blocks.")] = 4,
    heads: Annotated[int, typer.Option(min=1, help="Attention heads (must divide width).")] = 4,
    context: Annotated[int, typer.Option(min=1, help="Tokens (bytes) per sample.")] = 64,
    seed: Annotated[int, typer.Option(help="Seed of the model init and batch order.")] = 0,
    data_seed: Annotated[
        int, typer.Option(help="Seed of the train/validation split (a network-wide setting).")
    ] = 0,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout (progress on stderr).")
    ] = False,
) -> None:
    """Pretrain a small GPT with AdamW and save it as the swarm's base checkpoint.

    Prints the validation loss (nats per byte) before and after, and the base model's hash.

    A network starts from it with a trainable spec (full, lora:<rank> or last:<k>):
    `seedswarm network create --base CHECKPOINT --trainable lora:4 --out NET` writes the genesis
    checkpoint and its hash, which is what every node checks.

    Example: seedswarm pretrain --task pycode:pretrain --steps 500 --out runs/base.safetensors
    """
    from training.pretrain import PretrainConfig, save_pretrained

    console = Console(stderr=json_output)
    try:
        config = PretrainConfig(
            task=task, steps=steps, batch_size=batch_size, lr=lr, width=width, depth=depth,
            heads=heads, context=context, seed=seed, data_seed=data_seed,
        )
        model, _, history = run_with_progress(config, console)
        digest = save_pretrained(out, model, config, history)
    except SeedswarmError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=1) from None
    data = summary(config, history, digest, out)
    if json_output:
        typer.echo(json.dumps(data))
    else:
        print_summary(data, console)


def register(app: typer.Typer) -> None:
    """Add `seedswarm pretrain`."""
    app.command(name="pretrain")(pretrain_command)
