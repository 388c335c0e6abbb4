"""`seedswarm receipts`: why this miner scored what it did, round by round, from the validators.

Every validator answers receipt requests over the network's transport with a signed
ScoreReceipt per (miner, round) it scored: whether the contribution passed the filters and
verified, the loss deltas, its rating and the weight given. The command asks every validator
the Registry lists, checks each receipt's signature against that validator's registered key,
and prints them. It joins the transport under a throwaway identity, so a node that is running
with the keys is not disturbed (the request names the miner by its public key).
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from seedswarm.commands.chain_context import (
    DEFAULT_NETWORK,
    AddressOption,
    JsonOption,
    KeysOption,
    NetworkOption,
    NotReady,
    RpcOption,
    fmt_duration,
    open_node_chain,
    print_json,
)

if TYPE_CHECKING:
    from adapters.transport.core import TransportCore
    from protocol.domain_types import EvmAddress, PublicKey
    from seedswarm.commands.chain_context import NodeChain
    from validator.service.receipt_client import ReceiptAnswer


def receipts(
    network: NetworkOption = DEFAULT_NETWORK,
    keys: KeysOption = None,
    address: AddressOption = None,
    last: Annotated[int, typer.Option("--rounds", min=1, help="How many recent rounds.")] = 5,
    rounds: Annotated[
        list[int] | None, typer.Option("--round", help="A round to ask about (repeatable).")
    ] = None,
    timeout_s: Annotated[
        float | None, typer.Option("--timeout", help="Seconds per request (default: from the "
                                   "round length).")
    ] = None,
    rpc: RpcOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fetch this miner's signed score receipts from the validators and explain each round.

    Example: seedswarm receipts --network network.toml --keys keys/ --rounds 10
    """
    node = open_node_chain(network, keys, address, rpc, signer=False)
    miner = _miner_key(node)
    validators = _validator_keys(node)
    wanted = sorted(set(rounds)) if rounds else _recent_rounds(node, last)
    length = node.bundle.network.round_length
    timeout = timeout_s if timeout_s is not None else min(5.0, max(1.0, length / 4))
    answers = asyncio.run(_ask(node, network, validators, miner, wanted, timeout))
    got = [a for a in answers if a.receipt is not None]
    if not got and any(a.error.startswith("unreachable") for a in answers):
        raise NotReady(f"no validator answered ({answers[0].error}): check that the network's "
                       "peers are reachable (`seedswarm doctor`)")
    report = _report(miner, validators, wanted, answers)
    if as_json:
        print_json(report)
    else:
        _print(report)


def _miner_key(node: NodeChain) -> PublicKey:
    from protocol.domain_types import PublicKey

    if node.node_key is not None:
        return PublicKey(node.node_key)
    bound = node.client.registry.node_key_of(node.address)
    if not any(bound):
        raise NotReady(f"{node.address} has no node key on the chain (not registered): pass "
                       "--keys DIR of the miner instead")
    return bound


def _validator_keys(node: NodeChain) -> dict[PublicKey, EvmAddress]:
    registry = node.client.registry
    keys = {registry.node_key_of(account): account for account in registry.validators()}
    if not keys:
        raise NotReady("the Registry lists no validators: nobody scores this network yet")
    return keys


def _recent_rounds(node: NodeChain, count: int) -> list[int]:
    genesis, length = node.bundle.genesis.time, node.bundle.network.round_length
    now = time.time()
    if now < genesis + length:
        raise NotReady(f"no round has been scored yet: round 0 ends in "
                       f"{fmt_duration(genesis + length - now)}")
    current = math.floor((now - genesis) / length)
    return list(range(max(0, current - count), current))


async def _ask(
    node: NodeChain, network: Path, validators: dict[PublicKey, EvmAddress], miner: PublicKey,
    rounds: list[int], timeout_s: float,
) -> list[ReceiptAnswer]:
    from validator.service.receipt_client import fetch_receipts

    transport = _transport(node, network)
    await transport.start()
    try:
        await _dial_bootstrap(transport, node, timeout_s)
        return await fetch_receipts(transport, list(validators), miner, rounds,
                                    max_bytes=node.bundle.network.max_message_bytes,
                                    timeout_s=timeout_s)
    finally:
        await transport.stop()


def _transport(node: NodeChain, network: Path) -> TransportCore:
    """The network's transport, as a node builds it, under a throwaway key."""
    from protocol.identity import NodeKey
    from seedswarm.launch.node_plan import NodePlan
    from seedswarm.launch.node_transport import build_transport
    from seedswarm.launch.settings import NodeSettings

    settings = NodeSettings(role="miner", network=network, keystore=Path(),
                            state_dir=Path())
    return build_transport(NodePlan(settings, node.bundle), NodeKey.generate())


async def _dial_bootstrap(transport: TransportCore, node: NodeChain, timeout_s: float) -> None:
    """libp2p: connect to the bootstrap peers, so requests can find the validators."""
    from adapters.transport.libp2p_transport import Libp2pTransport

    if not isinstance(transport, Libp2pTransport):
        return
    for addr in node.bundle.peers.bootstrap:
        try:
            async with asyncio.timeout(timeout_s):
                await transport.connect(addr)
        except Exception:  # an unreachable peer shows up as a failed request
            continue


def _report(
    miner: PublicKey, validators: dict[PublicKey, EvmAddress], rounds: list[int],
    answers: list[ReceiptAnswer],
) -> dict[str, Any]:
    from protocol.identity import peer_id_from_public_bytes
    from protocol.messages import WEIGHT_ONE_PPB

    found, missing = [], []
    for a in answers:
        who = {"round": a.round_index, "validator": a.validator.hex(),
               "validator_account": validators[a.validator]}
        r = a.receipt
        if r is None:
            missing.append({**who, "error": a.error})
            continue
        found.append({**who, "signature_ok": True, "reason": r.reason,
                      "filters_passed": r.filters_passed, "verified": r.verified,
                      "loss_delta_own": r.loss_delta_own,
                      "loss_delta_random": r.loss_delta_random, "influence": r.influence,
                      "rating_mu": r.rating_mu, "rating_sigma": r.rating_sigma,
                      "weight": r.weight_ppb / WEIGHT_ONE_PPB, "weight_ppb": r.weight_ppb})
    return {"miner": miner.hex(), "peer_id": peer_id_from_public_bytes(miner),
            "rounds": rounds, "receipts": found, "missing": missing}


def _print(report: dict[str, Any]) -> None:
    console = Console(highlight=False)
    if report["receipts"]:
        table = Table(title=f"score receipts of {report['peer_id']} (signatures verified)")
        for name in ("round", "validator", "weight", "Δloss own", "Δloss random", "rating",
                     "reason"):
            table.add_column(name, overflow="fold")
        for r in report["receipts"]:
            table.add_row(str(r["round"]), r["validator"][:12] + "…", f"{r['weight']:.4f}",
                          f"{r['loss_delta_own']:+.4g}", f"{r['loss_delta_random']:+.4g}",
                          f"{r['rating_mu']:.2f}±{r['rating_sigma']:.2f}", r["reason"])
        console.print(table)
    for m in report["missing"]:
        console.print(f"round {m['round']}, validator {m['validator'][:12]}…: {m['error']}")
    if not report["receipts"] and not report["missing"]:
        console.print("no rounds asked about")


def register(app: typer.Typer) -> None:
    """Adds `seedswarm receipts`."""
    app.command("receipts")(receipts)
