"""`seedswarm doctor`: a preflight before starting a node, one line per check, each failure with
its fix. Exits 0 when nothing failed (warnings pass), 1 otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from seedswarm.commands.chain_context import (
    DEFAULT_NETWORK,
    AddressOption,
    JsonOption,
    KeysOption,
    NetworkOption,
    RpcOption,
    print_json,
)

if TYPE_CHECKING:
    from web3 import Web3

    from protocol.domain_types import EvmAddress
    from seedswarm.commands.preflight import Check
    from seedswarm.launch.join_bundle import JoinBundle

_MARKS = {"ok": "[green]✓[/]", "warn": "[yellow]![/]", "fail": "[red]✗[/]", "skip": "-"}


def doctor(
    network: NetworkOption = DEFAULT_NETWORK,
    keys: KeysOption = None,
    address: AddressOption = None,
    state_dir: Annotated[
        Path, typer.Option("--state-dir", help="Where the node will keep its state.")
    ] = Path("state"),
    listen_port: Annotated[
        int | None, typer.Option("--listen-port", help="libp2p: the port the node will listen on.")
    ] = None,
    listen_host: Annotated[str, typer.Option(help="The address it will listen on.")] = "0.0.0.0",
    role: Annotated[
        str, typer.Option(help="miner or validator: the stake to expect if not registered.")
    ] = "miner",
    min_free_gb: Annotated[float, typer.Option(help="Free disk space to require.")] = 2.0,
    rpc: RpcOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check this machine, the chain, the account and the peers before starting a node.

    Example: seedswarm doctor --network network.toml --keys keys/ --listen-port 4001
    """
    checks = _run_checks(network, keys, address, state_dir, listen_port, listen_host, role,
                         min_free_gb, rpc)
    ok = all(c.passed for c in checks)
    if as_json:
        print_json({"ok": ok, "checks": [c.__dict__ for c in checks]})
    else:
        console = Console(highlight=False, soft_wrap=True)
        for c in checks:
            fix = f"; fix: {c.fix}" if c.fix and c.status in ("fail", "warn") else ""
            console.print(f"{_MARKS[c.status]} {c.name:<10} {escape(c.detail + fix)}")
        failed = sum(1 for c in checks if not c.passed)
        console.print("all checks passed" if ok else f"{failed} check(s) failed")
    if not ok:
        raise typer.Exit(1)


def _run_checks(
    network: Path, keys: Path | None, address: str | None, state_dir: Path,
    listen_port: int | None, listen_host: str, role: str, min_free_gb: float, rpc: str | None,
) -> list[Check]:
    from protocol.errors import SeedswarmError
    from seedswarm.commands import preflight as pf
    from seedswarm.commands.chain_context import checked_address, load_bundle
    from seedswarm.commands.preflight import Check

    checks = [pf.check_python(), pf.check_torch(), pf.check_disk(state_dir, min_free_gb)]
    try:
        bundle = load_bundle(network)
    except SeedswarmError as exc:  # a missing or damaged file: nothing else can be checked
        checks.append(Check("network", "fail", *pf.cause_and_fix(exc)))
        return checks
    checks.append(Check("network", "ok", f"{bundle.network.network_id} ({network})"))
    who: EvmAddress | None = checked_address(address) if address else None
    node_key: bytes | None = None
    if keys is not None:
        key_check, key_bundle = pf.check_keys(keys)
        checks.append(key_check)
        if key_bundle is not None:
            who, node_key = key_bundle.evm_address, key_bundle.node_key.public.raw
    url = rpc or bundle.chain.url
    rpc_check, w3 = pf.check_rpc(url, bundle.chain.chain_id)
    checks.append(rpc_check)
    if w3 is None:
        checks += [Check(n, "skip", f"needs the chain at {url}")
                   for n in ("clock", "contracts", "funds", "registry")]
    else:
        checks += _chain_checks(w3, bundle, who, node_key, role)
    length = bundle.network.round_length
    checks.append(pf.check_peers(bundle, pf.connect_timeout_s(length)))
    if listen_port is not None:
        checks.append(pf.check_port(listen_host, listen_port))
    return checks


def _chain_checks(
    w3: Web3, bundle: JoinBundle, who: EvmAddress | None, node_key: bytes | None, role: str
) -> list[Check]:
    from eth_utils.address import to_checksum_address

    from adapters.chain.registry_contract import RegistryClient
    from adapters.chain.standing import read_standing
    from seedswarm.commands import preflight as pf
    from seedswarm.commands.chain_context import GAS_BUDGET
    from seedswarm.commands.preflight import Check

    checks = [pf.check_clock(w3, bundle.network.round_length)]
    contracts = pf.check_contracts(w3, bundle)
    checks.append(contracts)
    if not contracts.passed:
        return [*checks, *(Check(n, "skip", "needs the contracts") for n in ("funds", "registry"))]
    if who is None:
        return [*checks, *(Check(n, "skip", "give --keys DIR or --address 0x… to check the "
                                 "account") for n in ("funds", "registry"))]
    standing = read_standing(RegistryClient.read_only(w3, bundle.chain.registry), who)
    chain = bundle.chain
    min_stake = chain.min_validator_stake if role == "validator" else chain.min_miner_stake
    gas = GAS_BUDGET * int(w3.eth.gas_price)
    balance = int(w3.eth.get_balance(to_checksum_address(who)))
    checks.append(pf.check_funds(balance, gas, standing, min_stake, bundle))
    checks.append(pf.check_registration(standing, node_key))
    return checks


def register(app: typer.Typer) -> None:
    """Adds `seedswarm doctor`."""
    app.command("doctor")(doctor)
