"""`seedswarm status`: one node's view of the network, from its status file and from the chain.

Read-only: it needs neither the keystore's password nor a funded account. The node's side (its
round, model hash, refusals, the scores it gave) comes from the status file the running miner
or validator writes (`status_file` in its settings; STATE_DIR/status.json by default here).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from seedswarm.commands.chain_context import (
    DEFAULT_NETWORK,
    AddressOption,
    JsonOption,
    KeysOption,
    NetworkOption,
    RpcOption,
    fmt_duration,
    fmt_units,
    open_node_chain,
    print_json,
    units,
)

if TYPE_CHECKING:
    from adapters.chain.standing import Standing
    from seedswarm.commands.chain_context import NodeChain
    from seedswarm.launch.join_bundle import JoinBundle

STATUS_FILE = "status.json"
TOP_SCORES = 5


def status(
    network: NetworkOption = DEFAULT_NETWORK,
    keys: KeysOption = None,
    address: AddressOption = None,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="The node's state directory.")
    ] = None,
    status_file: Annotated[
        Path | None,
        typer.Option("--status-file", help="The node's status file (default: in STATE_DIR)."),
    ] = None,
    rpc: RpcOption = None,
    as_json: JsonOption = False,
) -> None:
    """The node's round and model, the network's round, its registration, scores and refusals.

    Example: seedswarm status --network network.toml --keys keys/ --state-dir state/
    """
    from adapters.chain.standing import read_standing

    node = open_node_chain(network, keys, address, rpc, signer=False)
    standing = read_standing(node.client.registry, node.address)
    path = status_file or (state_dir / STATUS_FILE if state_dir is not None else None)
    written = _read_status(path)
    report = {
        "account": node.address,
        "node": _node_view(written, path),
        "network": _network_view(node.bundle, time.time()),
        "registration": _registration_view(standing, node.node_key),
        "last_scores": _last_scores(node, standing, written),
        "refusals": _refusals(written),
        "chain": _chain_view(node, standing),
    }
    if as_json:
        print_json(report)
    else:
        _print(report)


def _read_status(path: Path | None) -> dict[str, Any] | None:
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _node_view(written: dict[str, Any] | None, path: Path | None) -> dict[str, Any]:
    if written is None:
        why = ("no --state-dir given" if path is None else
               f"no status file at {path} (the node writes it while it runs, to the "
               "`status_file` of its settings)")
        return {"status_file": str(path) if path else None, "found": False, "note": why}
    age = time.time() - float(written.get("time", math.nan))
    return {"status_file": str(path), "found": True, "role": written.get("role"),
            "round": written.get("round"), "model_hash": written.get("model_hash"),
            "peer_id": written.get("peer_id"),
            "updated_s_ago": round(age, 1) if math.isfinite(age) else None}


def _network_view(bundle: JoinBundle, now: float) -> dict[str, Any]:
    genesis, length = bundle.genesis.time, bundle.network.round_length
    current = math.floor((now - genesis) / length) if now >= genesis else None
    return {"network_id": bundle.network.network_id, "genesis_time": genesis,
            "round_length": length, "epoch_length": bundle.network.epoch_length,
            "round": current,
            "starts_in_s": None if current is not None else round(genesis - now, 1)}


def _registration_view(standing: Standing, node_key: bytes | None) -> dict[str, Any]:
    bound = bytes(standing.node_key)
    matches = None if node_key is None or not standing.registered else bound == node_key
    return {"role": standing.role.name.lower(), "stake": units(standing.stake),
            "stake_wei": standing.stake, "slot": standing.slot, "active": standing.active,
            "active_in_s": standing.wait_s if standing.active_at is not None else None,
            "node_key": bound.hex() if standing.registered else None,
            "node_key_matches": matches, "unbonding": units(standing.unbonding),
            "unbonding_wei": standing.unbonding, "release_time": standing.release_time}


def _last_scores(
    node: NodeChain, standing: Standing, written: dict[str, Any] | None
) -> dict[str, Any]:
    """Miners: the chain's performance of the slot in the latest directly settled epoch;
    validators: the scores of the latest epoch in its ledger (from the status file)."""
    from adapters.chain.reward_history import WEIGHT_SCALE

    own = epoch = None
    if standing.slot is not None:
        contract = node.client.incentives.contract
        sender = node.client.sender
        performances = node.client.incentives.miner_performances()
        if standing.slot < len(performances):
            own = performances[standing.slot] / WEIGHT_SCALE
            epoch = int(sender.call_decoded(contract.functions.performanceEpoch()))
    given: dict[str, float] = {}
    ledger = (written or {}).get("ledger") or {}
    epochs = ledger.get("epochs") or {}
    if epochs:
        last = max(epochs, key=int)
        scores = epochs[last].get("scores") or {}
        top = sorted(scores.items(), key=lambda kv: -float(kv[1]))[:TOP_SCORES]
        given = {k: float(v) for k, v in top}
        epoch = int(last) if epoch is None else epoch
    return {"epoch": epoch, "own_performance": own, "given": given}


def _refusals(written: dict[str, Any] | None) -> dict[str, int]:
    """Messages the node refused, by reason (its peer gate), and what its transport dropped."""
    if written is None:
        return {}
    out = {k.removeprefix("refused_"): int(v) for k, v in (written.get("gate") or {}).items()
           if k.startswith("refused_") and v}
    out |= {k: int(v) for k, v in (written.get("transport") or {}).items()
            if k.startswith("dropped_") and v}
    return out


def _chain_view(node: NodeChain, standing: Standing) -> dict[str, Any]:
    epoch = standing.epoch
    previous = node.client.incentives.epoch_status(epoch - 1).name.lower() if epoch else None
    return {"url": node.url, "chain_id": node.bundle.chain.chain_id, "epoch": epoch,
            "chain_time": standing.chain_time, "previous_epoch": previous}


def _print(report: dict[str, Any]) -> None:
    console = Console(highlight=False)
    say = console.print
    node, net, reg = report["node"], report["network"], report["registration"]
    say(f"[bold]{report['account']}[/] on {net['network_id']}")
    if node["found"]:
        say(f"  node      {node['role']} at round {node['round']}, model "
            f"{str(node['model_hash'])[:16]}… (status {node['updated_s_ago']} s old)")
    else:
        say(f"  node      {node['note']}")
    if net["round"] is None:
        say(f"  network   round 0 starts in {fmt_duration(net['starts_in_s'])}")
    else:
        behind = (f", node {net['round'] - node['round']} round(s) behind"
                  if node["found"] and isinstance(node["round"], int) else "")
        say(f"  network   round {net['round']} ({net['round_length']:g} s rounds){behind}")
    say(f"  registry  {_registration_line(reg)}")
    scores = report["last_scores"]
    if scores["own_performance"] is not None:
        say(f"  scores    epoch {scores['epoch']}: consensus performance "
            f"{scores['own_performance']:.4f}")
    if scores["given"]:
        top = ", ".join(f"{k[:8]}…={v:.3g}" for k, v in scores["given"].items())
        say(f"  scores    epoch {scores['epoch']} (given): {top}")
    refusals = report["refusals"]
    say("  refusals  " + (", ".join(f"{k}: {v}" for k, v in sorted(refusals.items()))
                          if refusals else "none"))
    chain = report["chain"]
    say(f"  chain     epoch {chain['epoch']} at {chain['url']} (chain {chain['chain_id']}), "
        f"previous epoch {chain['previous_epoch'] or '-'}")


def _registration_line(reg: dict[str, Any]) -> str:
    if reg["role"] == "none":
        line = "not registered: register with `seedswarm join --network network.toml --keys DIR`"
        if reg["unbonding_wei"]:
            line += f" ({fmt_units(reg['unbonding_wei'], 'ETH')} unbonding)"
        return line
    slot = f", slot {reg['slot']}" if reg["slot"] is not None else ""
    line = f"{reg['role']}, stake {fmt_units(reg['stake_wei'], 'ETH')}{slot}, "
    line += "active" if reg["active"] else (
        f"not active yet: counts from the next epoch, in {fmt_duration(reg['active_in_s'])}")
    if reg["node_key_matches"] is False:
        line += (" [red]- the chain binds another node key to this account than the keystore's"
                 "[/]")
    return line


def register(app: typer.Typer) -> None:
    """Adds `seedswarm status`."""
    app.command("status")(status)
