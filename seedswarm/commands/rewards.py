"""`seedswarm rewards|claim`: what the network paid this node, epoch by epoch, and claiming it.

Each settled epoch credits SEED to every miner (by the validators' consensus weight for its
slot) and every validator that revealed (by its share of the validators' pool); credits add up
until `claim` mints them all to the account at once.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from seedswarm.commands.chain_context import (
    DEFAULT_NETWORK,
    AddressOption,
    JsonOption,
    KeysOption,
    NetworkOption,
    RpcOption,
    fmt_units,
    open_node_chain,
    print_json,
    require_funds,
    units,
)


def rewards(
    network: NetworkOption = DEFAULT_NETWORK,
    keys: KeysOption = None,
    address: AddressOption = None,
    rpc: RpcOption = None,
    as_json: JsonOption = False,
) -> None:
    """Per settled epoch: this node's weight, its reward and whether it was claimed.

    Read-only (no password, no funds): --keys reads only the keystore's address, --address
    looks at any account.

    Example: seedswarm rewards --network network.toml --keys keys/ --json
    """
    from adapters.chain.reward_history import read_reward_history

    node = open_node_chain(network, keys, address, rpc, signer=False)
    history = read_reward_history(node.w3, node.client.incentives, node.address,
                                  node.bundle.chain.deployment_block)
    rows = [{"epoch": r.epoch, "role": r.role.name.lower() if r.role.value else "merkle",
             "slot": r.slot, "weight": r.weight, "reward": units(r.amount),
             "reward_wei": r.amount, "claimed": r.claimed} for r in history.rewards]
    report: dict[str, Any] = {
        "account": node.address, "epochs": rows,
        "total": units(history.total), "total_wei": history.total,
        "claimed": units(history.claimed_total), "claimed_wei": history.claimed_total,
        "claimable": units(history.claimable), "claimable_wei": history.claimable,
    }
    if as_json:
        print_json(report)
        return
    console = Console()
    if not rows:
        console.print(f"no rewards for {node.address} yet: an epoch pays once it is settled, "
                      "after its commit and reveal windows", highlight=False)
    else:
        table = Table(title=f"rewards of {node.address}")
        for name, justify in (("epoch", "right"), ("role", "left"), ("weight", "right"),
                              ("reward (SEED)", "right"), ("claimed", "left")):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for row in rows:
            weight = "-" if row["weight"] is None else f"{row['weight']:.4f}"
            table.add_row(str(row["epoch"]), str(row["role"]), weight, f"{row['reward']:.6f}",
                          "yes" if row["claimed"] else "no")
        console.print(table)
    console.print(f"total {fmt_units(history.total, 'SEED')}, claimable "
                  f"{fmt_units(history.claimable, 'SEED')}"
                  + (" (`seedswarm claim` mints it)" if history.claimable else ""),
                  highlight=False)


def claim(
    network: NetworkOption = DEFAULT_NETWORK,
    keys: KeysOption = None,
    rpc: RpcOption = None,
    as_json: JsonOption = False,
) -> None:
    """Mint every credited reward to this node's account as SEED tokens.

    Nothing to claim is not an error: it says so and exits 0.

    Example: seedswarm claim --network network.toml --keys keys/
    """
    from web3.logs import DISCARD

    node = open_node_chain(network, keys, None, rpc, signer=True)
    incentives = node.client.incentives
    report: dict[str, Any] = {"account": node.address, "claimed": 0.0, "claimed_wei": 0,
                              "tx": None}
    if incentives.claimable(node.address) == 0:
        report["message"] = ("nothing to claim yet: rewards are credited when an epoch is "
                             "settled (see `seedswarm rewards`)")
    else:
        require_funds(node, 0, "claiming")
        tx = incentives.claim()
        receipt = node.w3.eth.get_transaction_receipt(tx.tx_hash)  # type: ignore[arg-type]
        events = incentives.contract.events.Claimed().process_receipt(receipt, errors=DISCARD)
        amount = sum(int(e["args"]["amount"]) for e in events)
        report.update(claimed=units(amount), claimed_wei=amount, tx=tx.tx_hash,
                      message=f"claimed {fmt_units(amount, 'SEED')}")
    balance = node.client.token_balance(node.address)
    report.update(balance=units(balance), balance_wei=balance)
    if as_json:
        print_json(report)
        return
    suffix = f" (tx {report['tx']})" if report["tx"] else ""
    Console().print(f"{report['message']}{suffix}; {node.address} holds "
                    f"{fmt_units(balance, 'SEED')}", highlight=False)


def register(app: typer.Typer) -> None:
    """Adds `seedswarm rewards` and `seedswarm claim`."""
    app.command("rewards")(rewards)
    app.command("claim")(claim)
