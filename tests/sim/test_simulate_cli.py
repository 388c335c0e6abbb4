"""`seedswarm simulate` end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from seedswarm.commands.simulate import register

REQUIRED_KEYS = {"rounds", "val_loss", "final_val_loss", "bytes_per_miner_per_round", "miners",
                 "codec"}


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        """Keeps `simulate` a subcommand."""

    return app


def test_simulate_writes_json_and_plot(tmp_path: Path) -> None:
    out, png = tmp_path / "sim.json", tmp_path / "sim.png"
    args = [
        "simulate", "--task", "synthetic", "--base", "scratch", "--width", "32", "--depth", "1",
        "--trainable", "full", "--miners", "2", "--rounds", "2", "--scalars", "32",
        "--check-replicas", "--json", str(out), "--plot", str(png),
    ]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data.keys() >= REQUIRED_KEYS
    assert data["rounds"] == 2 and len(data["val_loss"]) == 2 and data["miners"] == 2
    assert data["codec"] == "fo" and data["final_val_loss"] == data["val_loss"][-1]
    # 32 one-byte scalars plus a signed header: far below the 4-byte-per-parameter dense form.
    assert 32 < data["bytes_per_miner_per_round"] < 400 < data["dense_fp32_bytes"]
    assert data["replicas_checked"] is True
    assert png.stat().st_size > 1000
    assert "validation loss" in result.output


def test_simulate_rejects_a_bad_codec(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), ["simulate", "--codec", "sgd", "--base", "scratch"])
    assert result.exit_code == 1
    assert "codec" in result.output


def test_simulate_with_attackers_reports_rewards_and_receipts(tmp_path: Path) -> None:
    out = tmp_path / "attacked.json"
    args = [
        "simulate", "--task", "synthetic", "--base", "scratch", "--width", "32", "--depth", "1",
        "--trainable", "full", "--miners", "3", "--rounds", "2", "--scalars", "256",
        "--attackers", "noise=1,lazy=1", "--json", str(out),
    ]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    scoring = json.loads(out.read_text())["scoring"]
    assert scoring["reward_share_by_kind"]["honest"] == 1.0
    assert scoring["reward_share_by_kind"]["noise"] == scoring["reward_share_by_kind"]["lazy"] == 0
    lazy = next(m for m in scoring["miners"].values() if m["kind"] == "lazy")
    assert [r["round"] for r in lazy["receipts"]] == [0, 1]
    assert "verification" in lazy["receipts"][0]["reason"]
    assert "reward share" in result.output


def test_simulate_rejects_unknown_attackers() -> None:
    result = CliRunner().invoke(_app(), ["simulate", "--attackers", "teleport=1"])
    assert result.exit_code == 1 and "teleport" in result.output


def test_the_plot_shows_losses_references_reward_shares_and_bytes() -> None:
    from seedswarm.sim.attackers import parse_attackers
    from seedswarm.sim.config import SimConfig
    from seedswarm.sim.reference import adamw_curve
    from seedswarm.sim.report import plot_figure
    from seedswarm.sim.run import simulate
    from training.genesis import ModelShape

    config = SimConfig(task="synthetic", base="scratch", shape=ModelShape(width=32, depth=1),
                       trainable="full", miners=2, rounds=3, scalars=64,
                       attackers=parse_attackers("noise=1"))
    result = simulate(config)
    reference = adamw_curve(config)
    assert len(reference) == config.rounds + 1
    assert reference[0] == result.initial_val_loss  # the same base model, the same data
    fig = plot_figure(result, reference)
    loss_ax, share_ax, bytes_ax = fig.axes
    lines = {line.get_label(): line for line in loss_ax.get_lines()}
    validation = next(v for k, v in lines.items() if k.startswith("validation loss"))
    assert list(validation.get_xdata()) == [0, 1, 2, 3]
    assert list(validation.get_ydata()) == [result.initial_val_loss, *result.val_loss]
    train = lines["train loss (each round's data)"]
    assert list(train.get_ydata()) == [r.train_loss for r in result.records]
    assert list(lines["centralized AdamW, same data"].get_ydata()) == reference
    base = next(v for k, v in lines.items() if k.startswith("base model"))
    assert set(base.get_ydata()) == {result.initial_val_loss}
    # rounds are whole numbers on both round axes
    for ax in (loss_ax, bytes_ax):
        ax.figure.canvas.draw()
        assert all(float(t).is_integer() for t in ax.get_xticks())
    # one bar per miner, honest first; the noise attacker's share is 0
    shares = [bar.get_height() for bar in share_ax.patches]
    assert len(shares) == 3 and shares[-1] == 0.0 and abs(sum(shares) - 1.0) < 1e-9
    assert [t.get_text().split("\n")[1] for t in share_ax.get_xticklabels()] == [
        "honest", "honest", "noise"]
    (per_miner,) = [line for line in bytes_ax.get_lines() if line.get_label().startswith("per")]
    assert list(per_miner.get_ydata()) == [r.bytes_per_miner for r in result.records]


def test_simulate_warns_when_the_validation_loss_rose(tmp_path: Path) -> None:
    base = ["simulate", "--task", "synthetic", "--base", "scratch", "--width", "32", "--depth",
            "1", "--trainable", "full", "--miners", "2", "--rounds", "2", "--scalars", "32",
            "--scoring", "equal"]
    out = tmp_path / "diverged.json"
    diverged = CliRunner().invoke(_app(), [*base, "--outer-lr", "20", "--json", str(out)])
    assert diverged.exit_code == 0, diverged.output
    data = json.loads(out.read_text())
    assert data["final_val_loss"] > data["initial_val_loss"] and data["loss_rose"] is True
    assert "warning" in diverged.output and "validation loss rose" in diverged.output

    out = tmp_path / "learned.json"
    learned = CliRunner().invoke(_app(), [*base, "--outer-lr", "0.05", "--json", str(out)])
    assert learned.exit_code == 0, learned.output
    data = json.loads(out.read_text())
    assert data["final_val_loss"] < data["initial_val_loss"] and data["loss_rose"] is False
    assert "validation loss rose" not in learned.output
