"""`seedswarm stake|unstake|withdraw`: a registered node's stake in the network's Registry.

Stake is in the chain's native coin (ETH on a devnet). `stake` adds to it; `unstake` leaves the
network (the Registry's deregister: the whole stake starts unbonding); `withdraw` pays the
unbonded stake back once the network's unbonding delay has passed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from seedswarm.commands.chain_context import (
    DEFAULT_NETWORK,
    JsonOption,
    KeysOption,
    NetworkOption,
    NotReady,
    RpcOption,
    fmt_duration,
    fmt_units,
    open_node_chain,
    parse_amount,
    print_json,
    require_funds,
    units,
)

if TYPE_CHECKING:
    from adapters.chain.standing import Standing
    from seedswarm.commands.chain_context import NodeChain

_JOIN_HINT = "register first with `seedswarm join --network network.toml --keys DIR`"


def stake(
    amount: Annotated[str, typer.Argument(help="How much to add, in ETH (e.g. 1.5).")],
    network: NetworkOption = DEFAULT_NETWORK,
    keys: KeysOption = None,
    wei: Annotated[bool, typer.Option("--wei", help="AMOUNT is in wei.")] = False,
    rpc: RpcOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add AMOUNT to this node's stake (it must be registered).

    Example: seedswarm stake 1.5 --network network.toml --keys keys/
    """
    value = parse_amount(amount, in_wei=wei)
    node = open_node_chain(network, keys, None, rpc, signer=True)
    standing = _registered(node, "add stake")
    require_funds(node, value, f"staking {fmt_units(value, 'ETH')}")
    tx = node.client.registry.add_stake(value)
    total = node.client.registry.stake_of(node.address)
    report = {"account": node.address, "role": standing.role.name.lower(),
              "added": units(value), "added_wei": value, "stake": units(total),
              "stake_wei": total, "tx": tx.tx_hash}
    _print(report, as_json, f"added {fmt_units(value, 'ETH')}: {node.address} now stakes "
                            f"{fmt_units(total, 'ETH')} as a {report['role']} (tx {tx.tx_hash})")


def unstake(
    network: NetworkOption = DEFAULT_NETWORK,
    keys: KeysOption = None,
    rpc: RpcOption = None,
    as_json: JsonOption = False,
) -> None:
    """Leave the network: the whole stake starts unbonding (then `seedswarm withdraw`).

    Example: seedswarm unstake --network network.toml --keys keys/
    """
    node = open_node_chain(network, keys, None, rpc, signer=True)
    _registered(node, "unstake")
    require_funds(node, 0, "unstaking")
    tx = node.client.registry.deregister()
    amount, release = node.client.registry.unbonding_of(node.address)
    wait = max(0, release - node.client.registry.latest_timestamp())
    report = {"account": node.address, "unbonding": units(amount), "unbonding_wei": amount,
              "release_time": release, "wait_s": wait, "tx": tx.tx_hash}
    _print(report, as_json, f"{node.address} left the network; {fmt_units(amount, 'ETH')} "
                            f"unbonding, withdrawable in {fmt_duration(wait)} with `seedswarm "
                            f"withdraw` (tx {tx.tx_hash})")


def withdraw(
    network: NetworkOption = DEFAULT_NETWORK,
    keys: KeysOption = None,
    rpc: RpcOption = None,
    as_json: JsonOption = False,
) -> None:
    """Withdraw the stake unbonded by `seedswarm unstake`, once the unbonding delay is over.

    Example: seedswarm withdraw --network network.toml --keys keys/
    """
    node = open_node_chain(network, keys, None, rpc, signer=True)
    amount, release = node.client.registry.unbonding_of(node.address)
    if amount == 0:
        raise NotReady(f"{node.address} has no stake unbonding: run `seedswarm unstake` first "
                       "(a registered node's stake stays locked while it takes part)")
    now = node.client.registry.latest_timestamp()
    if now < release:
        raise NotReady(f"{fmt_units(amount, 'ETH')} still unbonding: withdrawable in "
                       f"{fmt_duration(release - now)} (chain time {release}); run `seedswarm "
                       "withdraw` again then")
    require_funds(node, 0, "withdrawing")
    tx = node.client.registry.withdraw()
    report = {"account": node.address, "withdrawn": units(amount), "withdrawn_wei": amount,
              "tx": tx.tx_hash}
    _print(report, as_json, f"withdrew {fmt_units(amount, 'ETH')} to {node.address} "
                            f"(tx {tx.tx_hash})")


def _registered(node: NodeChain, action: str) -> Standing:
    from adapters.chain.standing import read_standing

    standing = read_standing(node.client.registry, node.address)
    if not standing.registered:
        raise NotReady(f"cannot {action}: {node.address} is not registered on this network: "
                       f"{_JOIN_HINT}")
    return standing


def _print(report: dict[str, Any], as_json: bool, line: str) -> None:
    if as_json:
        print_json(report)
    else:
        Console().print(line, highlight=False)


def register(app: typer.Typer) -> None:
    """Adds `seedswarm stake`, `unstake` and `withdraw`."""
    app.command("stake")(stake)
    app.command("unstake")(unstake)
    app.command("withdraw")(withdraw)
