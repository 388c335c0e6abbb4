"""`seedswarm network create`: start a network and write the file others join it with."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from seedswarm.launch.join_bundle import JoinBundle

network_app = typer.Typer(
    name="network",
    help="Start a network: its genesis model, its contracts, its peers, its network file.",
    no_args_is_help=True,
)

NETWORK_FILE = "network.toml"
BASE_FILE = "base.safetensors"
ETH = 10**18


@network_app.command("create")
def create(
    out: Annotated[Path, typer.Option(help="Directory for network.toml and the genesis model")],
    chain: Annotated[
        str, typer.Option(help="embedded (in this process), anvil, or a JSON-RPC URL")
    ] = "embedded",
    host: Annotated[
        str, typer.Option(help="Address the chain, broker, relay, faucet and broker account "
                          "service listen on "
                          "(what joiners on other hosts reach)")
    ] = "127.0.0.1",
    transport: Annotated[str, typer.Option(help="libp2p or mqtt")] = "libp2p",
    broker: Annotated[
        str, typer.Option(help="MQTT: embedded (amqtt, anonymous: anyone may connect), "
                          "mosquitto (started here with per-node accounts and topic ACLs; "
                          "registered nodes get their password from a service named in the "
                          "network file), or the mqtt://HOST:PORT of a broker already running")
    ] = "embedded",
    port: Annotated[
        int, typer.Option(help="libp2p relay / MQTT broker port (0: any free port)")
    ] = 0,
    base: Annotated[
        Path | None, typer.Option(help="Genesis base checkpoint (from `seedswarm pretrain`)")
    ] = None,
    pretrain: Annotated[
        bool, typer.Option("--pretrain", help="Pretrain a small base model (cached) as genesis")
    ] = False,
    task: Annotated[
        str, typer.Option(help="synthetic, pycode[:pretrain|:finetune|:docs] or text:<path>")
    ] = "synthetic",
    trainable: Annotated[str, typer.Option(help="full, lora:<rank> or last:<k>")] = "lora:4",
    network_id: Annotated[str | None, typer.Option(help="Default: a fresh random id")] = None,
    round_length: Annotated[
        int | None, typer.Option(help="Seconds per round [default: the network's]")
    ] = None,
    epoch_length: Annotated[
        int | None, typer.Option(help="Rounds per reward epoch [default: the network's]")
    ] = None,
    scalars: Annotated[
        int | None, typer.Option(help="K per contribution [default: the network's]")
    ] = None,
    outer_momentum: Annotated[
        float | None, typer.Option(help="Nesterov momentum of the outer step, 0 for plain SGD "
                                   "[default: the network's]")
    ] = None,
    min_stake: Annotated[float, typer.Option(help="Minimum stake, miners and validators")] = 1.0,
    emission: Annotated[float, typer.Option(help="SEED minted per epoch")] = 1_000.0,
    max_miners: Annotated[int, typer.Option(help="Miner slots")] = 64,
    max_validators: Annotated[
        int, typer.Option(help="Validator seats (the epoch windows grow with them)")
    ] = 16,
    startup: Annotated[
        int | None, typer.Option(help="Seconds until round 0 [default: two rounds]")
    ] = None,
    keys: Annotated[
        Path | None, typer.Option(help="URL chains: the deployer's key directory")
    ] = None,
    dev: Annotated[
        bool, typer.Option("--dev", help="URL chains: a dev chain with unlocked accounts "
                           "(anvil, hardhat): deploy from a funded throwaway account and serve a "
                           "faucet for joiners")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the endpoints as JSON")] = False,
) -> None:
    """Create a network: build and hash its genesis model, deploy its contracts, start what it
    needs to be reachable, and write OUT/network.toml, everything a joiner needs.

    With --chain embedded or anvil the chain runs here, with a faucet for joiners; a libp2p
    network gets a relay here as its bootstrap peer, an MQTT one a broker. With --broker
    mosquitto the broker admits only accounts: OUT/broker/secret (keep it private) derives each
    node's password, and a registered node that proves its node key gets its own from the
    account service here (`seedswarm join` asks for it by itself). Whatever runs here
    keeps running until Ctrl-C. With a chain URL and nothing to serve, the command deploys,
    writes the file and exits.

    Example: seedswarm network create --chain anvil --host 10.0.0.1 --out NET
             seedswarm join --network NET/network.toml --role validator --keys V --faucet
    """
    console = Console(stderr=True)
    if base is not None and pretrain:
        raise typer.BadParameter("give --base or --pretrain, not both", param_hint="--base")
    if transport not in ("libp2p", "mqtt"):
        raise typer.BadParameter("libp2p or mqtt", param_hint="--transport")
    if broker not in ("embedded", "mosquitto") and not broker.startswith("mqtt://"):
        raise typer.BadParameter("embedded, mosquitto or mqtt://HOST:PORT",
                                 param_hint="--broker")
    options = {k: v for k, v in locals().items() if k != "console"}
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(_create(console, options))


async def _create(console: Console, o: dict[str, Any]) -> None:
    import secrets

    from adapters.chain.faucet import Faucet
    from protocol.domain_types import Wei
    from protocol.netconfig import build_network
    from seedswarm.launch.join_bundle import ChainInfo, GenesisInfo, JoinBundle
    from seedswarm.launch.local_chain import start_chain
    from seedswarm.launch.network_operator import (
        BLOCK_TIME_S,
        Economics,
        check_genesis,
        deploy_network,
        epoch_windows,
        planned_genesis,
        write_genesis,
    )
    from training.genesis import GenesisSpec

    out: Path = o["out"]
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    base_kind = str(o["base"]) if o["base"] is not None else ("auto" if o["pretrain"] else
                                                              "scratch")
    recipe = GenesisSpec(task=o["task"], trainable=o["trainable"], base=base_kind)
    console.print(f"genesis: {base_kind} base, task {recipe.task}, trainable {recipe.trainable}")
    model_hash, fingerprint = await asyncio.to_thread(write_genesis, recipe, out / BASE_FILE)
    network = build_network(
        o["network_id"] or f"net-{secrets.token_hex(4)}", model_hash, task=recipe.task,
        trainable=recipe.trainable, miners=o["max_miners"], round_length=o["round_length"],
        epoch_length=o["epoch_length"], scalars=o["scalars"],
        outer_momentum=o["outer_momentum"],
    )
    await asyncio.to_thread(check_genesis, network, out / BASE_FILE)
    handle = await asyncio.to_thread(start_chain, o["chain"], o["host"])
    stops: list[Callable[[], Awaitable[None]]] = [partial(asyncio.to_thread, handle.stop)]
    try:
        deployer = await asyncio.to_thread(_deployer, handle, o["keys"], o["dev"])
        economics = Economics(min_miner_stake=Wei(round(o["min_stake"] * ETH)),
                              min_validator_stake=Wei(round(o["min_stake"] * ETH)),
                              emission=Wei(round(o["emission"] * ETH)),
                              max_miners=o["max_miners"], max_validators=o["max_validators"])
        startup = o["startup"] if o["startup"] is not None else 2 * network.round_length
        genesis_chain, genesis_wall = planned_genesis(handle.w3, startup)
        block = int(handle.w3.eth.block_number)
        window = epoch_windows(network.round_length, economics.max_validators, BLOCK_TIME_S)
        deployment = await asyncio.to_thread(deploy_network, handle.w3, deployer, network,
                                             economics, genesis_chain, window, window)
        faucet = ""
        if handle.kind != "url" or o["dev"]:
            tap = Faucet(handle.url, Wei(10 * economics.min_validator_stake), host=o["host"])
            tap.start()
            stops.append(partial(asyncio.to_thread, tap.stop))
            faucet = tap.url
        peers, serve = await _peers(o, network.network_id, model_hash, out / BASE_FILE, stops,
                                    (handle.url, deployment.registry))
        bundle = JoinBundle(
            network=network,
            genesis=GenesisInfo(time=genesis_wall, model_hash=network.base_checkpoint_hash,
                                checkpoint=BASE_FILE, task_fingerprint=fingerprint),
            chain=ChainInfo(url=handle.url, chain_id=deployment.chain_id, token=deployment.token,
                            registry=deployment.registry, incentives=deployment.incentives,
                            deployment_block=block,
                            min_miner_stake=economics.min_miner_stake,
                            min_validator_stake=economics.min_validator_stake, faucet=faucet),
            peers=peers,
        )
        bundle.save(out / NETWORK_FILE)
        _report(console, bundle, out, o["as_json"])
        if handle.kind == "url" and serve is None:
            return
        console.print("serving the network's chain and peers here; Ctrl-C stops them")
        _cancel_on_sigterm()
        if serve is not None:
            await serve
        else:
            await asyncio.Event().wait()
    finally:
        for stop in reversed(stops):
            with contextlib.suppress(Exception):
                await stop()
        console.print("network services stopped")


def _deployer(handle: Any, keys: Path | None, dev: bool) -> Any:
    from adapters.chain.backends import funded_account
    from protocol.errors import ConfigError
    from seedswarm.commands.keys import load_keys

    if keys is not None:
        return load_keys(keys).evm_account
    if handle.kind == "url" and not dev:
        raise ConfigError(f"deploying on {handle.url} needs a funded account: pass --keys DIR "
                          "(or --dev for a dev chain with unlocked accounts)")
    return funded_account(handle.w3, 100 * ETH)


async def _peers(o: dict[str, Any], network_id: str, model_hash: Any, genesis_path: Path,
                 stops: list[Callable[[], Awaitable[None]]],
                 registry: tuple[str, str]) -> tuple[Any, Any]:
    """The network's [peers] and the task serving them here (None when nothing runs here);
    `registry`: (RPC URL, Registry address), who may have a broker account."""
    from protocol.identity import NodeKey
    from seedswarm.launch.join_bundle import PeerInfo

    if o["transport"] == "mqtt":
        from adapters.transport.mqtt_broker import EmbeddedBroker
        from seedswarm.launch.relay import run_mqtt_seed

        url, seed_key, password, accounts = o["broker"], NodeKey.generate(), "", ""
        if url.startswith("mqtt://"):  # a broker already running (e.g. a compose service)
            host, port = PeerInfo("mqtt", broker=url).broker_host_port
        elif url == "embedded":
            embedded = EmbeddedBroker(o["port"] or None, host=o["host"])
            await embedded.start()
            stops.append(embedded.stop)
            host, port = o["host"], embedded.port
            url = f"mqtt://{host}:{port}"
        else:
            port, password, accounts = await _mosquitto_with_accounts(
                o, network_id, seed_key, stops, registry)
            host = o["host"]
            url = f"mqtt://{host}:{port}"
        seed_ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        seed = asyncio.create_task(run_mqtt_seed(
            network_id, seed_key, (host, port),
            (model_hash, genesis_path), seed_ready.set_result, password))
        seed_id = await asyncio.wait_for(asyncio.shield(seed_ready), timeout=60)
        stops.insert(len(stops), partial(_cancel, seed))
        return PeerInfo("mqtt", broker=url, seeds=(seed_id,), accounts=accounts), seed
    from seedswarm.launch.relay import run_relay

    ready: asyncio.Future[tuple[str, ...]] = asyncio.get_running_loop().create_future()
    key = NodeKey.generate()
    task = asyncio.create_task(run_relay(network_id, key, o["host"], o["port"],
                                         (model_hash, genesis_path), ready.set_result))
    addrs = await asyncio.wait_for(asyncio.shield(ready), timeout=60)
    stops.append(partial(_cancel, task))
    return PeerInfo("libp2p", bootstrap=tuple(addrs)), task


BROKER_DIR = "broker"
SECRET_FILE = "secret"


async def _mosquitto_with_accounts(o: dict[str, Any], network_id: str, seed_key: Any,
                                   stops: list[Callable[[], Awaitable[None]]],
                                   registry: tuple[str, str]) -> tuple[int, str, str]:
    """Start mosquitto with accounts (the seed's, more as registered nodes ask) and the
    service that issues them: (broker port, the seed's password, the service's URL)."""
    from adapters.transport.broker_auth import node_password
    from adapters.transport.mqtt_broker import BrokerAccounts, MosquittoBroker
    from seedswarm.launch.broker_accounts import (
        BrokerAccountService,
        broker_secret,
        registered_on_chain,
    )

    secret_path = o["out"] / BROKER_DIR / SECRET_FILE
    secret = await asyncio.to_thread(broker_secret, secret_path)
    password = node_password(secret, seed_key.peer_id)
    broker = MosquittoBroker(accounts=BrokerAccounts(network_id, {seed_key.peer_id: password}),
                             host=o["host"], port=o["port"] or None)
    await broker.start()
    stops.append(broker.stop)
    service = BrokerAccountService(
        network_id, secret, registered=registered_on_chain(*registry),
        admit=broker.add_accounts, host=o["host"]).start()
    stops.append(partial(asyncio.to_thread, service.stop))
    return broker.port, password, service.url


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _report(console: Console, bundle: JoinBundle, out: Path, as_json: bool) -> None:
    endpoints = {
        "network_file": str(out / NETWORK_FILE),
        "network_id": bundle.network.network_id,
        "chain": bundle.chain.url,
        "faucet": bundle.chain.faucet or None,
        "bootstrap": list(bundle.peers.bootstrap),
        "broker": bundle.peers.broker or None,
        "broker_accounts": bundle.peers.accounts or None,
        "genesis_time": bundle.genesis.time,
    }
    if as_json:
        typer.echo(json.dumps(endpoints, sort_keys=True))
        return
    for key, value in endpoints.items():
        if value:
            shown = ", ".join(value) if isinstance(value, list) else value
            console.print(f"{key}: {shown}", soft_wrap=True)


def _cancel_on_sigterm() -> None:
    task = asyncio.current_task()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


@network_app.command("broker-accounts")
def broker_accounts(
    network: Annotated[Path, typer.Option(help="The network file (network.toml)")],
    secret: Annotated[Path, typer.Option(help="The broker secret (created if missing; "
                                         "keep it private: it issues every password)")],
    peer_id: Annotated[list[str], typer.Option(help="A node that may use the broker "
                                               "(repeat for each)")],
    out: Annotated[Path, typer.Option(help="Where to write mosquitto's passwd and acl")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Per-node accounts and topic ACLs for a deployment's mosquitto (see deploy/README.md):
    each node logs in as its peer id with the password printed for it
    ($SEEDSWARM_BROKER_PASSWORD); re-run when a node registers, then SIGHUP mosquitto."""
    from protocol.errors import ConfigError
    from seedswarm.launch.broker_accounts import write_broker_accounts

    try:
        passwords = write_broker_accounts(network, secret, peer_id, out)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps({"out": str(out), "passwords": passwords}))
        return
    console = Console()
    console.print(f"wrote {out}/passwd and {out}/acl; hand each node its password:")
    for peer, password in passwords.items():
        console.print(f"  {peer}  {password}")


def register(app: typer.Typer) -> None:
    """Adds `seedswarm network` to the CLI."""
    app.add_typer(network_app)
