"""`seedswarm chain`: deploy the contracts, inspect a network, run a local anvil node.

A deployment is recorded as a small JSON file (chain id and the three contract addresses) that
miners and validators load with `--deployment`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3

    from adapters.chain.deployment import Deployment

chain_app = typer.Typer(
    name="chain",
    help=(
        "Deploy and inspect the seedswarm contracts on an EVM chain.\n\n"
        "Rewards are settled on-chain each epoch: validators commit, then reveal, weight "
        "vectors; the Incentives contract takes the stake-weighted median per miner, clips to "
        "it and credits rewards that owners claim as SEED tokens. Point --rpc at any JSON-RPC "
        "endpoint, e.g. a local node from `seedswarm chain anvil`."
    ),
    no_args_is_help=True,
)

RpcOption = Annotated[str, typer.Option("--rpc", help="JSON-RPC URL, e.g. http://127.0.0.1:8545")]
KeysOption = Annotated[
    Path | None,
    typer.Option(
        "--keys", help="Key directory (see `seedswarm keys new`) of the deploying account"
    ),
]
DevOption = Annotated[
    bool,
    typer.Option("--dev", help="Dev chains only: use a fresh account funded by the node"),
]
ETH = 10**18


def _account(w3: Web3, keys: Path | None, dev: bool) -> LocalAccount:
    from eth_account import Account

    from adapters.chain.backends import funded_account

    if dev:
        return funded_account(w3, 100 * ETH)
    if keys is None:
        raise typer.BadParameter("give --keys DIR, or --dev on a dev chain", param_hint="--keys")
    from seedswarm.commands.keys import load_keys

    account: LocalAccount = Account.from_key(load_keys(keys).evm_private_key)
    return account


@chain_app.command("deploy")
def deploy(
    rpc: RpcOption,
    out: Annotated[Path, typer.Option(help="Where to write the deployment record")] = Path(
        "deployment.json"
    ),
    keys: KeysOption = None,
    dev: DevOption = False,
    round_length: Annotated[int, typer.Option(help="Seconds per training round")] = 60,
    epoch_length: Annotated[int, typer.Option(help="Rounds per reward epoch")] = 10,
    genesis_model_hash: Annotated[str, typer.Option(help="Hex SHA of the genesis model")] = "00"
    * 32,
    max_miners: Annotated[int, typer.Option(help="Miner slots (<= 1024)")] = 256,
    max_validators: Annotated[int, typer.Option(help="Validator seats (<= 64)")] = 16,
    min_stake: Annotated[
        float, typer.Option(help="Minimum stake in ETH, miners and validators")
    ] = 1.0,
    unbonding: Annotated[int, typer.Option(help="Unbonding delay in seconds")] = 86_400,
    immunity_epochs: Annotated[
        int, typer.Option(min=1, help="Epochs a new miner cannot be replaced (at least 1)")
    ] = 2,
    emission: Annotated[float, typer.Option(help="SEED minted per epoch")] = 1_000.0,
    miner_share: Annotated[float, typer.Option(help="Fraction of emission for miners")] = 0.5,
    commit_window: Annotated[int, typer.Option(help="Seconds to commit after an epoch")] = 120,
    reveal_window: Annotated[int, typer.Option(help="Seconds to reveal after commits")] = 120,
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON")] = False,
) -> None:
    """Deploy Token, Registry and Incentives; genesis is the chain's current time."""
    from adapters.chain.backends import chain_time, connect
    from adapters.chain.deploy import deploy_suite
    from protocol.domain_types import ModelHash, Wei
    from protocol.settlement.params import EconomicParams, NetworkParams

    w3 = connect(rpc)
    network = NetworkParams(
        genesis_time=chain_time(w3),
        round_length=round_length,
        epoch_length=epoch_length,
        genesis_model_hash=ModelHash(bytes.fromhex(genesis_model_hash.removeprefix("0x"))),
        min_miner_stake=Wei(int(min_stake * ETH)),
        min_validator_stake=Wei(int(min_stake * ETH)),
        unbonding_delay=unbonding,
        max_miners=max_miners,
        max_validators=max_validators,
        immunity_epochs=immunity_epochs,
    )
    economics = EconomicParams(
        emission_per_epoch=Wei(int(emission * ETH)),
        commit_window=commit_window,
        reveal_window=reveal_window,
        miner_share_bps=round(miner_share * 10_000),
    )
    deployment = deploy_suite(w3, _account(w3, keys, dev), network, economics)
    deployment.save(out)
    if as_json:
        typer.echo(deployment.to_json(), nl=False)
        return
    table = Table(title=f"Deployed on chain {deployment.chain_id} -> {out}")
    table.add_column("contract")
    table.add_column("address")
    for name in ("token", "registry", "incentives"):
        table.add_row(name, getattr(deployment, name))
    Console().print(table)


@chain_app.command("status")
def status(
    rpc: Annotated[
        str | None, typer.Option("--rpc", help="JSON-RPC URL (default: the network file's)")
    ] = None,
    deployment_file: Annotated[
        Path, typer.Option("--deployment", help="Record written by `chain deploy`")
    ] = Path("deployment.json"),
    network: Annotated[
        Path | None,
        typer.Option("--network", help="A network file (network.toml) instead of --deployment"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Show the network's schedule, current epoch, validators and miner slots (read-only).

    Example: seedswarm chain status --network network.toml
    """
    from eth_account import Account

    from adapters.chain.client import ChainClient
    from seedswarm.commands.chain_context import connect_chain, load_bundle

    deployment = _deployment(deployment_file, network)
    url = rpc or (load_bundle(network).chain.url if network is not None else None)
    if url is None:
        raise typer.BadParameter("give --rpc URL, or --network network.toml", param_hint="--rpc")
    w3 = connect_chain(url, deployment.chain_id)
    # views only: any account will do, and on a real node (or the embedded chain) it needs no funds
    client = ChainClient.connect(w3, deployment, Account.create())
    params = client.registry.network_params()
    epoch = client.registry.current_epoch()
    validators = {v: client.registry.stake_of(v) for v in client.registry.validators()}
    report = {
        "params": {**asdict(params), "genesis_model_hash": params.genesis_model_hash.hex()},
        "current_epoch": epoch,
        "previous_epoch_status": client.incentives.epoch_status(epoch - 1).name if epoch else None,
        "validators": validators,
        "miner_slots": client.registry.miner_slots(),
        "performance": list(client.incentives.miner_performances()),
    }
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    console = Console()
    console.print(f"epoch {epoch} (epochs of {params.epoch_duration} s), "
                  f"previous epoch: {report['previous_epoch_status']}")  # fmt: skip
    table = Table(title="validators")
    table.add_column("account")
    table.add_column("stake (ETH)", justify="right")
    for account, stake in validators.items():
        table.add_row(account, f"{stake / ETH:.4f}")
    console.print(table)
    slots = client.registry.miner_slots()
    occupied = sum(1 for m in slots if int(m, 16) != 0)
    console.print(f"{occupied} miners in {len(slots)} opened slots (max {params.max_miners})")


@chain_app.command("anvil")
def anvil(
    port: Annotated[int, typer.Option(help="Loopback port to serve JSON-RPC on")] = 8545,
) -> None:
    """Run a local anvil dev chain (npm @foundry-rs/anvil) until interrupted."""
    from adapters.chain.devnode import AnvilNode

    with AnvilNode(port=port) as node:
        typer.echo(f"anvil listening on {node.url} (Ctrl-C to stop)")
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


def _deployment(record: Path, network: Path | None) -> Deployment:
    from adapters.chain.deployment import Deployment
    from protocol.errors import ConfigError
    from seedswarm.commands.chain_context import load_bundle

    if network is not None:
        return load_bundle(network).chain.deployment
    if not record.is_file():
        raise ConfigError(f"no deployment record at {record}: write one with `seedswarm chain "
                          "deploy --out`, or pass --network network.toml")
    return Deployment.load(record)


def register(app: typer.Typer) -> None:
    """Adds `seedswarm chain` to the CLI."""
    app.add_typer(chain_app, name="chain")
