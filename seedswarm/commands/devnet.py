"""`seedswarm devnet`: a whole local network in one command."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from seedswarm.devnet.local_network import Snapshot

ETH = 10**18


def node_table(snapshot: Snapshot, title: str = "devnet") -> Table:
    """One row per node: round, model hash, work, refusals, latest validation loss."""
    table = Table(title=title)
    for column in ("node", "round", "model hash", "published / certified", "refused", "val loss"):
        table.add_column(column, justify="left" if column in ("node", "model hash") else "right")
    for name, status in sorted(snapshot.items()):
        gate = status.get("gate", {})
        refused = sum(v for k, v in gate.items() if k.startswith("refused_"))
        losses = status.get("ledger", {}).get("val_loss", {})
        last_loss = f"{losses[max(losses, key=int)]:.4f}" if losses else ""
        work = status.get("published", status.get("certified", ""))
        table.add_row(name, str(status.get("round", "-")), str(status.get("model_hash", ""))[:16],
                      str(work), str(refused), last_loss)
    return table


def summary_table(result: dict[str, Any]) -> Table:
    """Rewards on-chain and final hashes per miner."""
    table = Table(title=f"settled on {result['chain']} over {result['transport']}")
    attackers = result.get("attackers", {})
    table.add_column("miner")
    table.add_column("kind")
    table.add_column("final model hash")
    table.add_column("reward (SEED)", justify="right")
    for name, reward in sorted(result["rewards"].items()):
        table.add_row(name, attackers.get(name, "honest"),
                      str(result["final_model_hashes"][name])[:16], f"{reward / ETH:.4f}")
    return table


def devnet(
    miners: Annotated[int, typer.Option(help="Miner processes")] = 3,
    validators: Annotated[int, typer.Option(help="Validator processes")] = 1,
    rounds: Annotated[int, typer.Option(help="Rounds to train before stopping")] = 5,
    transport: Annotated[str, typer.Option(help="libp2p or mqtt")] = "mqtt",
    chain: Annotated[str, typer.Option(help="embedded, anvil, or a JSON-RPC URL")] = "embedded",
    broker: Annotated[str, typer.Option(help="MQTT broker: embedded (amqtt) or mosquitto")] = (
        "embedded"
    ),
    round_length: Annotated[
        int | None,
        typer.Option(help="Seconds per round (default: measured on this machine at start)"),
    ] = None,
    epoch_length: Annotated[
        int | None, typer.Option(help="Rounds per reward epoch (default: all rounds)")
    ] = None,
    attackers: Annotated[
        str | None,
        typer.Option(help="KIND=COUNT,... extra miners running the simulator's attacks "
                     "(e.g. noise=1,free-rider=2); they should earn ~0"),
    ] = None,
    workdir: Annotated[
        Path | None, typer.Option(help="Keep keys, state and logs here (default: a temp dir)")
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the result here")] = None,
    keep_alive: Annotated[
        bool, typer.Option("--keep-alive", help="Keep the network (chain included) up until "
                           "Ctrl-C, nodes never stopping; serves a faucet for joiners")
    ] = False,
    export: Annotated[
        Path | None,
        typer.Option(help="Write the network file others join with (DIR/network.toml) and "
                     "every node's metrics, health and dashboard URLs (DIR/endpoints.json)"),
    ] = None,
) -> None:
    """Bring up a local network: chain, contracts, broker, and every node as its own process.

    Deploys the contracts, funds and registers every node, writes keystores and node settings,
    starts the miners and validators, shows a live table while they train, waits until the
    run's reward epochs are settled on-chain, stops everything it started (also on Ctrl-C or a
    failure) and prints the rewards each miner earned. Every node serves Prometheus metrics
    and /healthz, /readyz on a free port, every validator a dashboard; --export lists them.
    """
    import asyncio

    from protocol.errors import ConfigError
    from seedswarm.devnet.attack_miners import LIVE_ATTACKS
    from seedswarm.devnet.local_network import DevnetError, run_devnet
    from seedswarm.devnet.spec import DevnetSpec
    from seedswarm.sim.attackers import parse_attackers

    try:
        attack_spec = parse_attackers(attackers or "")
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--attackers") from exc
    for kind, _ in attack_spec:
        if kind not in LIVE_ATTACKS:
            raise typer.BadParameter(f"{kind} cannot run as its own process; live attacks: "
                                     f"{', '.join(LIVE_ATTACKS)}", param_hint="--attackers")
    spec = DevnetSpec(miners=miners, validators=validators, rounds=rounds, transport=transport,
                      chain=chain, broker=broker, round_length=round_length,
                      epoch_length=epoch_length, workdir=workdir, attackers=attack_spec,
                      keep_alive=keep_alive)
    console = Console()
    if keep_alive:
        _serve(console, spec, export, DevnetError)
        return

    def run(update: Any) -> dict[str, Any]:
        return asyncio.run(run_devnet(spec, update, export=export,
                                      on_start=partial(_show_endpoints, console)))

    result = _run_live(console, run, DevnetError)
    result_nodes = result.pop("nodes", {})
    console.print(node_table(result_nodes, "final state"))
    console.print(summary_table(result))
    hashes = set(result["final_model_hashes"].values())
    console.print(f"final model hashes agree: {len(hashes) == 1}; "
                  f"val loss {result['val_loss'][0]:.4f} -> {result['val_loss'][-1]:.4f}")
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _serve(console: Console, spec: Any, export: Path | None, error_type: type[Exception]) -> None:
    """Run the devnet until Ctrl-C, printing where everything is, then the table as it moves
    (plain lines, one table per round, when stdout is not a terminal)."""
    import asyncio
    import contextlib

    from seedswarm.devnet.local_network import serve_devnet

    def on_start(endpoints: dict[str, Any]) -> None:
        _show_endpoints(console, endpoints)
        console.print("the devnet is up; Ctrl-C stops it", soft_wrap=True)

    try:
        with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
            asyncio.run(serve_devnet(spec, export, on_start, PerRound(console)))
    except error_type as exc:
        console.print(f"[bold red]devnet failed:[/] {exc}")
        raise typer.Exit(code=1) from exc
    console.print("devnet stopped")


def _show_endpoints(console: Console, endpoints: dict[str, Any]) -> None:
    """Where everything runs, one line each."""
    for key in ("chain", "broker", "bootstrap", "faucet", "network_file", "export",
                "workdir", "round_length", "dashboards"):
        value = endpoints.get(key)
        if value:
            shown = ", ".join(value) if isinstance(value, list) else value
            console.print(f"{key}: {shown}", soft_wrap=True, highlight=False)


def _run_live(console: Console, run: Any, error_type: type[Exception]) -> dict[str, Any]:
    """A live table on a terminal; elsewhere (a log, a pipe) one table per round, as lines."""
    if not console.is_terminal:
        return _run_plain(console, run, error_type)
    from rich.live import Live

    with Live(node_table({}), console=console, refresh_per_second=4) as live:

        def update(snapshot: Snapshot) -> None:
            live.update(node_table(snapshot))

        try:
            result: dict[str, Any] = run(update)
        except error_type as exc:
            console.print(f"[bold red]devnet failed:[/] {exc}")
            raise typer.Exit(code=1) from exc
    return result


class PerRound:
    """Prints the node table once each time the slowest node reaches a new round."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.round = -1

    def __call__(self, snapshot: Snapshot) -> None:
        rounds = [s.get("round", -1) for s in snapshot.values()]
        current = min(rounds) if rounds else -1
        if current > self.round:
            self.round = current
            self.console.print(node_table(snapshot, f"devnet at round {current}"))


def _run_plain(console: Console, run: Any, error_type: type[Exception]) -> dict[str, Any]:
    try:
        result: dict[str, Any] = run(PerRound(console))
    except error_type as exc:
        console.print(f"devnet failed: {exc}")
        raise typer.Exit(code=1) from exc
    return result


def register(app: typer.Typer) -> None:
    """Adds `seedswarm devnet` to the CLI."""
    app.command("devnet")(devnet)
