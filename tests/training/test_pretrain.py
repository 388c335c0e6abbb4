"""Centralized pretraining lowers the loss, deterministically; the CLI saves a loadable base."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import typer
from typer.testing import CliRunner

from training.checkpoint import load_checkpoint, state_hash
from training.pretrain import PretrainConfig, learning_rate, pretrain

TINY = PretrainConfig(
    task="synthetic", steps=40, batch_size=16, lr=1e-2, warmup_steps=5,
    context=32, width=32, depth=1, heads=2, seed=0,
)


def test_short_pretrain_on_synthetic_lowers_the_loss_and_repeats_exactly() -> None:
    calls: list[int] = []
    model, digest, history = pretrain(TINY, progress=lambda step, _loss: calls.append(step))
    # Starts near ln(16) = 2.77; the task's noise floor is about 0.57.
    assert history.val_loss_before > 2.5
    assert history.val_loss_after < 1.2
    assert calls == list(range(1, 41)) and len(history.train_loss) == 40
    assert digest == state_hash(model)


def test_pretrain_repeats_exactly_given_the_seed() -> None:
    short = replace(TINY, steps=4)
    runs = [pretrain(short) for _ in range(2)]
    assert runs[0][1] == runs[1][1]
    assert runs[0][2].train_loss == runs[1][2].train_loss
    assert pretrain(replace(short, seed=1))[1] != runs[0][1]


def test_learning_rate_schedule() -> None:
    config = PretrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert learning_rate(0, config) == 0.1
    assert learning_rate(9, config) == 1.0
    assert abs(learning_rate(99, config) - 0.1) < 1e-3
    rates = [learning_rate(s, config) for s in range(10, 100)]
    assert rates == sorted(rates, reverse=True)


def test_cli_writes_a_checkpoint_with_the_printed_hash(tmp_path: Path) -> None:
    from seedswarm.commands.pretrain import register

    app = typer.Typer()
    register(app)

    @app.callback()
    def _group() -> None:
        """Keeps `pretrain` a subcommand."""

    out = tmp_path / "base.safetensors"
    args = [
        "pretrain", "--task", "synthetic", "--steps", "5", "--width", "32", "--depth", "1",
        "--heads", "2", "--context", "16", "--batch-size", "8", "--out", str(out), "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    model, meta = load_checkpoint(out)
    assert data["model_hash"] == meta["model_hash"] == state_hash(model).hex()
    assert meta["task"] == "synthetic" and meta["step"] == 5
    assert data["val_loss_after"] < data["val_loss_before"]

    bad = CliRunner().invoke(app, ["pretrain", "--task", "nope", "--out", str(out)])
    assert bad.exit_code == 1 and "unknown task" in bad.stderr
