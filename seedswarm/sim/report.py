"""Results of a simulated run: the summary a person reads, the JSON a script reads, a plot."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from protocol.netconfig import NetworkConfig
from seedswarm.sim.config import SimConfig
from seedswarm.sim.swarm import RoundRecord, SwarmTimes


@dataclass(frozen=True)
class SimResult:
    """A finished run."""

    config: SimConfig
    network: NetworkConfig
    base: str
    trainable_numel: int
    initial_val_loss: float
    records: tuple[RoundRecord, ...]
    times: SwarmTimes
    replicas_checked: bool
    scoring: dict[str, Any] | None = None

    @property
    def val_loss(self) -> list[float]:
        return [r.val_loss for r in self.records]

    @property
    def final_val_loss(self) -> float:
        return self.records[-1].val_loss if self.records else self.initial_val_loss

    @property
    def loss_rose(self) -> bool:
        """Whether the run ended with a higher validation loss than it started with."""
        return self.final_val_loss > self.initial_val_loss

    @property
    def bytes_per_miner_per_round(self) -> float:
        if not self.records:
            return 0.0
        return sum(r.bytes_per_miner for r in self.records) / len(self.records)

    @property
    def dense_bytes(self) -> int:
        """Size of the same update sent as a dense fp32 pseudo-gradient."""
        return 4 * self.trainable_numel

    def to_json(self) -> dict[str, Any]:
        """Plain data: the required keys first, then the details."""
        config = asdict(self.config)
        config["cache_dir"] = str(self.config.cache_dir) if self.config.cache_dir else None
        return {
            "rounds": len(self.records),
            "miners": self.config.miners,
            "codec": self.network.codec.value,
            "val_loss": self.val_loss,
            "final_val_loss": self.final_val_loss,
            "initial_val_loss": self.initial_val_loss,
            "loss_rose": self.loss_rose,
            "train_loss": [r.train_loss for r in self.records],
            "bytes_per_miner_per_round": self.bytes_per_miner_per_round,
            "dense_fp32_bytes": self.dense_bytes,
            "compression_vs_dense": _ratio(self.dense_bytes, self.bytes_per_miner_per_round),
            "trainable_numel": self.trainable_numel,
            "scalars": self.network.scalars,
            "task": self.config.task,
            "trainable": self.config.trainable,
            "base": self.base,
            "network_digest": self.network.digest().hex(),
            "network": self.network.to_toml(),
            "replicas_checked": self.replicas_checked,
            "model_hashes": [r.model_hash for r in self.records],
            "times_s": asdict(self.times),
            "config": config,
            "scoring": self.scoring,
        }


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.inf


def write_json(result: SimResult, path: Path) -> None:
    """Write ``result.to_json()`` to ``path`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")


def summary_table(result: SimResult) -> Table:
    """The final table of a run."""
    table = Table(title=f"seedswarm simulate: {result.config.task}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    cfg = result.config
    rows = [
        ("miners / rounds", f"{cfg.miners} / {len(result.records)}"),
        ("codec / scalars K", f"{cfg.codec} / {cfg.scalars} ({cfg.scalar_format})"),
        ("trainable", f"{cfg.trainable} ({result.trainable_numel:,} parameters)"),
        ("base model", result.base),
        ("validation loss", f"{result.initial_val_loss:.4f} -> {result.final_val_loss:.4f}"),
    ]
    if result.records:
        first, last = result.records[0], result.records[-1]
        rows.append(("train loss (round data)", f"{first.train_loss:.4f} -> {last.train_loss:.4f}"))
    rows += [
        ("bytes per miner per round", f"{result.bytes_per_miner_per_round:,.0f} (signed envelope)"),
        ("dense fp32 pseudo-gradient", f"{result.dense_bytes:,} bytes "
         f"({_ratio(result.dense_bytes, result.bytes_per_miner_per_round):,.1f}x larger)"),
        ("time compute / apply", f"{result.times.compute:.1f}s / {result.times.apply:.1f}s"),
        ("time check / other", f"{result.times.check:.1f}s / {result.times.other:.1f}s"),
        ("replicas", "bit-identical every round" if result.replicas_checked else "not checked"),
    ]
    for what, value in rows:
        table.add_row(what, value)
    return table


def scoring_table(result: SimResult) -> Table:
    """Reward shares by kind of miner and the validator's verification cost."""
    scoring = result.scoring or {}
    table = Table(title="validator scoring")
    table.add_column("miners")
    table.add_column("reward share", justify="right")
    for kind, share in sorted(scoring.get("reward_share_by_kind", {}).items()):
        table.add_row(kind, f"{share:.4f}")
    fraction = scoring.get("verification_cost_fraction", 0.0)
    table.add_row("verification / miner compute", f"{fraction:.3f}")
    return table


def plot_curves(
    curves: Sequence[tuple[str, Sequence[float]]], path: Path, *, title: str,
    hlines: Sequence[tuple[str, float]] = (),
) -> None:
    """Validation loss per round, one line per curve (index 0 = before round 0), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, values in curves:
        ax.plot(range(len(values)), values, label=label)
    for label, y in hlines:
        ax.axhline(y, linestyle="--", linewidth=1, color="gray")
        ax.annotate(label, (0, y), fontsize=8, color="gray", va="bottom")
    ax.set_xlabel("round")
    ax.set_ylabel("validation loss (nats/byte)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_result(result: SimResult, path: Path,
                adamw: Sequence[float] | None = None) -> None:
    """Write `plot_figure` as a PNG at `path`."""
    import matplotlib.pyplot as plt

    fig = plot_figure(result, adamw)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_figure(result: SimResult, adamw: Sequence[float] | None = None) -> Any:
    """What a researcher looks at after a run, as one figure of three panels:

    1. loss per round: the swarm's validation loss (round 0 = the base model) and the train
       loss of each round's data, with the references as lines: the base model's validation
       loss and, when given, centralized AdamW on the same data budget (`adamw`, index 0 =
       the base model; seedswarm.sim.reference);
    2. each miner's share of the rewards (honest and attacker miners told apart), when the
       run was scored;
    3. bytes per miner per round (signed envelopes), beside a dense fp32 update's size.

    Rounds are integer ticks.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rounds = len(result.records)
    fig, (loss_ax, share_ax, bytes_ax) = plt.subplots(
        3, 1, figsize=(8, 11), gridspec_kw={"height_ratios": [3, 2, 2]})
    label = f"{result.network.codec.value} x{result.config.miners}, K={result.network.scalars}"
    loss_ax.plot(range(rounds + 1), [result.initial_val_loss, *result.val_loss], marker="o",
                 markersize=3, label=f"validation loss ({label})")
    if rounds:
        # a round's train loss is measured on its data before its update: the model after
        # r rounds
        loss_ax.plot(range(rounds), [r.train_loss for r in result.records],
                     marker=".", linestyle=":", label="train loss (each round's data)")
    loss_ax.axhline(result.initial_val_loss, linestyle="--", linewidth=1, color="gray",
                    label=f"base model ({result.initial_val_loss:.4f})")
    if adamw is not None:
        loss_ax.plot(range(len(adamw)), list(adamw), linestyle="--", color="black",
                     linewidth=1.2, label="centralized AdamW, same data")
    loss_ax.set_xlabel("rounds certified (0 = the base model)")
    loss_ax.set_ylabel("loss (nats/byte)")
    loss_ax.set_title(f"{result.config.task}, {result.config.trainable}")
    loss_ax.legend(fontsize=8)
    _share_panel(share_ax, result)
    if rounds:
        bytes_ax.plot(range(rounds), [r.bytes_per_miner for r in result.records],
                      marker="o", markersize=3, label="per miner (signed envelope)")
    bytes_ax.axhline(result.dense_bytes, linestyle="--", linewidth=1, color="gray",
                     label=f"dense fp32 update ({result.dense_bytes:,} B)")
    bytes_ax.set_yscale("log")
    bytes_ax.set_xlabel("round")
    bytes_ax.set_ylabel("bytes")
    bytes_ax.set_title("bytes per miner per round")
    bytes_ax.legend(fontsize=8)
    for ax in (loss_ax, bytes_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _share_panel(ax: Any, result: SimResult) -> None:
    miners = (result.scoring or {}).get("miners", {})
    if not miners:
        ax.text(0.5, 0.5, "not scored (--scoring equal): no rewards", ha="center",
                va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    items = sorted(miners.items(), key=lambda kv: (kv[1]["kind"] != "honest", kv[0]))
    names = [f"{key[:8]}\n{entry['kind']}" for key, entry in items]
    shares = [entry["reward_share"] for _, entry in items]
    colors = ["tab:green" if entry["kind"] == "honest" else "tab:red" for _, entry in items]
    ax.bar(range(len(items)), shares, color=colors)
    ax.set_xticks(range(len(items)), names, fontsize=7)
    ax.set_ylabel("share of rewards")
    ax.set_title("reward share per miner (green: honest, red: attackers)")
    ax.grid(alpha=0.3, axis="y")
