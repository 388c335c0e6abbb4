"""`seedswarm join`: from a network file to a running node, in one command."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

DEFAULT_KEYS = Path.home() / ".seedswarm" / "keys"


def join(
    network: Annotated[Path, typer.Option(help="The network file (network.toml) to join")],
    role: Annotated[str, typer.Option(help="miner or validator")],
    keys: Annotated[
        Path, typer.Option(help="Key directory: used if it holds a keystore, created if not")
    ] = DEFAULT_KEYS,
    stake: Annotated[
        float | None,
        typer.Option(help="Stake to register with, in the chain's coin (default: the minimum); "
                     "a miner's stake is its bond, burned if validators prove a fabrication"),
    ] = None,
    faucet: Annotated[
        bool, typer.Option("--faucet", help="Devnets: ask the network's faucet for funds first")
    ] = False,
    evm_key_file: Annotated[
        Path | None,
        typer.Option(help="New keys only: import this hex EVM private key instead of a new one"),
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="Checkpoints and logs (default: KEYS/state-NETWORK_ID)")
    ] = None,
    listen_host: Annotated[
        str | None, typer.Option(help="libp2p: address to listen on [default: 127.0.0.1]")
    ] = None,
    listen_port: Annotated[
        int | None, typer.Option(help="libp2p: port to listen on [default: 0, any]")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve /metrics, /healthz, /readyz on this port (0: off) "
                                 "[env SEEDSWARM_METRICS_PORT]")
    ] = None,
    dashboard_port: Annotated[
        int | None, typer.Option(help="Validators: serve the dashboard on this port (0: off) "
                                 "[env SEEDSWARM_DASHBOARD_PORT]")
    ] = None,
    http_host: Annotated[
        str | None, typer.Option(help="Address the metrics and dashboard listen on "
                                 "[env SEEDSWARM_HTTP_HOST; default 127.0.0.1]")
    ] = None,
    log_format: Annotated[
        str | None, typer.Option(help="text or json [env SEEDSWARM_LOG_FORMAT]")
    ] = None,
) -> None:
    """Join a network as a miner or a validator, from its network file alone.

    Creates the keys if KEYS holds none (or uses them), funds the account from the devnet's
    faucet with --faucet, registers it with its stake (never twice: re-running is safe), writes
    the node's settings (KEYS/node-NETWORK_ID.toml, usable with `seedswarm miner --config`),
    fetches the genesis model from its peers if it is not next to the network file, catches up
    with the certified history and runs. The keystore password comes from $SEEDSWARM_PASSWORD or
    a prompt. On an MQTT network whose broker has accounts, the node gets its broker password
    from the network's account service once registered (or from $SEEDSWARM_BROKER_PASSWORD,
    where the operator hands passwords out).

    Example: seedswarm join --network NET/network.toml --role miner --keys K --faucet
    """
    from adapters.chain.faucet import request_funds
    from adapters.storage.keystore import KeyBundle, encrypt_keystore
    from protocol.domain_types import Wei
    from protocol.errors import ConfigError
    from seedswarm.commands.keys import keystore_path, load_keys, resolve_password, write_keystore
    from seedswarm.launch.join_bundle import JoinBundle
    from seedswarm.launch.joining import (
        active_epoch,
        connect_client,
        ensure_registered,
        network_round,
        node_settings,
    )
    from seedswarm.launch.runner import PASSWORD_ENV, run_from_settings
    from seedswarm.launch.settings import with_overrides

    if role not in ("miner", "validator"):
        raise typer.BadParameter("miner or validator", param_hint="--role")
    console = Console(stderr=True)
    bundle = JoinBundle.load(network)
    net_id = bundle.network.network_id
    state = state_dir or keys / f"state-{net_id}"
    settings = with_overrides(  # a mistake in the settings fails before anything is sent
        node_settings(network, keys, role, state),
        flags={"metrics_port": metrics_port, "dashboard_port": dashboard_port,
               "http_host": http_host, "log_format": log_format, "listen_host": listen_host,
               "listen_port": listen_port}, env=os.environ)
    if keystore_path(keys).exists():
        password = resolve_password(confirm=False)
        key_bundle = load_keys(keys, password)
    else:
        password = resolve_password(confirm=True)
        key_bundle = KeyBundle.generate()
        if evm_key_file is not None:
            raw = evm_key_file.read_text(encoding="utf-8").strip().removeprefix("0x")
            try:
                key_bundle = KeyBundle(key_bundle.node_key, bytes.fromhex(raw))
            except ValueError as exc:
                raise ConfigError(f"{evm_key_file}: not a hex EVM private key") from exc
        write_keystore(keys, encrypt_keystore(key_bundle, password), force=False)
        console.print(f"new keys in {keystore_path(keys)}")
    client = connect_client(bundle, key_bundle, bundle.chain.url)
    if faucet:
        if not bundle.chain.faucet:
            raise ConfigError("this network serves no faucet (not a devnet): fund "
                              f"{key_bundle.evm_address} another way and run without --faucet")
        sent = request_funds(bundle.chain.faucet, key_bundle.evm_address,
                             timeout_s=4 * bundle.network.round_length)
        console.print(f"faucet: {sent / 10**18:g} sent to {key_bundle.evm_address}"
                      if sent else "faucet: this account was funded before")
    amount = None if stake is None else Wei(round(stake * 10**18))
    standing, newly = ensure_registered(client, bundle, key_bundle, role, amount)
    settings_file = keys / f"node-{net_id}.toml"
    settings_file.write_text(settings.to_toml(), encoding="utf-8")
    if bundle.peers.accounts and not settings.broker_password:
        from seedswarm.launch.broker_accounts import request_broker_password

        # not written to the settings file: re-running join asks again
        settings = dataclasses.replace(settings, broker_password=request_broker_password(
            bundle.peers.accounts, net_id, key_bundle.node_key))
        console.print(f"broker account: {key_bundle.peer_id} (password from "
                      f"{bundle.peers.accounts})", soft_wrap=True)
    slot = "" if standing.slot is None else f", slot {standing.slot}"
    console.print(
        f"joined {net_id} as a {role}: peer id {key_bundle.peer_id}, EVM address "
        f"{key_bundle.evm_address}{slot}, stake {standing.stake / 10**18:g}"
        + (" (registered now)" if newly else " (registered before)"),
        soft_wrap=True)
    console.print(f"network at round {network_round(bundle)}; settings in {settings_file}",
                  soft_wrap=True)
    if not standing.active:
        epoch = active_epoch(standing, client.registry.epoch_start(standing.epoch))
        console.print(
            f"waiting for epoch {epoch} (round {epoch * bundle.network.epoch_length}, in about "
            f"{standing.wait_s} s): the Registry's snapshot at an epoch's start decides who "
            "takes part; following the network meanwhile", soft_wrap=True)
    env = dict(os.environ)
    env[PASSWORD_ENV] = password
    run_from_settings(settings, env)


def register(app: typer.Typer) -> None:
    """Adds `seedswarm join` to the CLI."""
    app.command("join")(join)
