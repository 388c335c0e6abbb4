"""The composition of a live node: settings in, a miner or validator service wired out.

A miner runs `node.honest_miner.HonestMiner` (or whatever `Miner` its caller injects: the devnet
injects attackers) on the live replica's round; a validator scores with `validator.scorer`
through `validator.service.engine.ScoringEngine`. Both are the classes the simulator composes,
so a live round computes exactly what a simulated one does. This module imports no simulator
and no devnet code.

Membership is a per-round consensus input: one `MembershipTimeline` per node, seeded at start
(seedswarm.launch.membership_source.resolve_timeline) and, with a chain, fed every settled epoch
snapshot while the node runs; the service, its follower, pool and engine share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import signal
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from adapters.storage.keystore import KeyBundle, decrypt_keystore
from adapters.transport.base import Transport
from node.honest_miner import HonestMiner, Miner
from node.service.miner import MinerConfig, MinerService
from node.service.produce import MinerProduce
from protocol.errors import ConfigError, SeedswarmError
from protocol.identity import NodeKey, peer_id_from_public_bytes
from protocol.membership import Membership, MembershipTimeline
from protocol.netconfig import NetworkConfig
from runtime.genesis_exchange import GENESIS_PROTOCOL, fetch_genesis, genesis_handler
from runtime.model_state import ModelState, load_state
from seedswarm.launch.membership_source import (
    resolve_membership,
    resolve_timeline,
    watch_chain,
)
from seedswarm.launch.node_http import NodePages
from seedswarm.launch.node_plan import NodePlan
from seedswarm.launch.node_transport import build_transport, keep_connected, outage_limit_s
from seedswarm.launch.settings import NodeSettings
from training.work import WorkConfig
from validator.scorer_store import scoring_certifier
from validator.service.engine import ScoringEngine
from validator.service.epoch_chain import EpochChain
from validator.service.validator import ValidatorConfig, ValidatorService

_log = logging.getLogger("seedswarm.launch")

GENESIS_FETCH_ROUNDS = 5
"""Rounds a joiner keeps asking its peers for the genesis checkpoint before it gives up."""

MinerFactory = Callable[[NodeKey, WorkConfig], Miner]
"""Builds the `Miner` a miner node runs from its key and the network's work rules."""

Sidecar = Callable[
    [MinerService | ValidatorService, Transport], Coroutine[Any, Any, None] | None
]
"""A task to run beside the service for as long as it runs (None: nothing to run)."""


def honest_miner(key: NodeKey, work: WorkConfig) -> Miner:
    """The miner every production node runs."""
    return HonestMiner(key)


def with_broker_account(plan: NodePlan, keys: KeyBundle) -> NodePlan:
    """`plan` with the node's broker password from the network's account service, where the
    network's broker has accounts and the settings give no password (`seedswarm miner
    --config`, a restart: `seedswarm join` asks before it starts the node)."""
    accounts = plan.bundle.peers.accounts
    if plan.transport != "mqtt" or not accounts or plan.settings.broker_password:
        return plan
    from seedswarm.launch.broker_accounts import request_broker_password

    password = request_broker_password(accounts, plan.network.network_id, keys.node_key)
    return dataclasses.replace(
        plan, settings=dataclasses.replace(plan.settings, broker_password=password))


def load_keys(settings: NodeSettings, password: str) -> KeyBundle:
    """Decrypt the node's keystore (directory or file)."""
    path = settings.keystore
    if path.is_dir():
        path = path / "keystore.json"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the keystore {path}: {exc.strerror} (create one with "
                          "`seedswarm keys new --out DIR`)") from exc
    return decrypt_keystore(text, password)


def _peers(settings: NodeSettings, membership: Membership) -> tuple[str, ...]:
    if settings.peers:
        return settings.peers
    keys = [k for k, _ in membership.validators] + list(membership.miners)
    return tuple(peer_id_from_public_bytes(k) for k in keys)


async def run_node(
    settings: NodeSettings, password: str, *, miner: MinerFactory = honest_miner,
    sidecars: Sequence[Sidecar] = (),
) -> None:
    """Run one node until cancelled (SIGTERM and SIGINT cancel it cleanly).

    `miner` builds what a miner node computes (honest by default); each of `sidecars` may
    return a task to run beside the service.
    """
    plan = await asyncio.to_thread(NodePlan.load, settings)
    keys = await asyncio.to_thread(load_keys, settings, password)
    plan = await asyncio.to_thread(with_broker_account, plan, keys)
    network = plan.network
    transport = build_transport(plan, keys.node_key)
    _cancel_on_signals()
    pages = NodePages(plan, keys)  # metrics, probes, dashboard: answering from the start
    async with pages.serving(), transport:
        pages.stage = "fetching the genesis model"
        base = await ensure_genesis(plan, transport, keys.peer_id)
        pages.stage = "loading its state"
        state = await asyncio.to_thread(load_state, network, settings.state_dir, base)
        # the Registry's snapshots: the replica's epoch to now, then each settled one
        timeline, source = await asyncio.to_thread(resolve_timeline, plan, state.round_index)
        # registered members are never crowded out by throw-away keys (issue 15, defect 2)
        transport.recognize_members(timeline.knows)
        transport.serve(GENESIS_PROTOCOL,
                        genesis_handler(network.base_checkpoint_digest, plan.genesis_copy))
        service = await _service(plan, keys, state, transport, timeline, miner)
        pages.attach(service)
        async with asyncio.TaskGroup() as group:
            group.create_task(service.run())
            group.create_task(pages.watch_chain())
            group.create_task(keep_connected(transport, plan.bootstrap(keys.peer_id)))
            group.create_task(source.feed(timeline))
            group.create_task(transport.wait_failed())
            group.create_task(watch_chain(source, plan.chain_url,
                                          outage_limit_s(network.round_length),
                                          network.round_length / 2))
            for sidecar in sidecars:
                task = sidecar(service, transport)
                if task is not None:
                    group.create_task(task)


async def ensure_genesis(plan: NodePlan, transport: Transport, own_peer_id: str) -> Path:
    """The node's own copy of the genesis checkpoint (it serves it to joiners): copied from
    the file next to the network file, or fetched from peers and verified by its hash."""
    copy = plan.genesis_copy
    if copy.exists():
        return copy
    copy.parent.mkdir(parents=True, exist_ok=True)
    local = plan.local_checkpoint()
    if local is not None:
        await asyncio.to_thread(_copy_atomic, local, copy)
        return copy
    network = plan.network

    async def verify(path: Path) -> bool:
        return await asyncio.to_thread(_is_genesis, network, path)

    membership = await asyncio.to_thread(resolve_membership, plan)
    seeds = plan.bundle.peers.seed_peers()
    peers = [p for p in dict.fromkeys([*seeds, *_peers(plan.settings, membership)])
             if p != own_peer_id]
    attempts = GENESIS_FETCH_ROUNDS
    for attempt in range(attempts):
        try:
            return await fetch_genesis(transport, peers, network.base_checkpoint_digest, copy,
                                       verify, timeout_s=network.round_length)
        except ConfigError:
            if attempt == attempts - 1:
                raise
            _log.info("genesis checkpoint not available yet; retrying in one round")
            await asyncio.sleep(network.round_length)  # peers may still be connecting
    raise AssertionError("unreachable")


def _is_genesis(network: NetworkConfig, path: Path) -> bool:
    try:
        ModelState.from_base(network, path)
    except (SeedswarmError, OSError, ValueError, KeyError):
        return False
    return True


def _copy_atomic(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


async def _service(
    plan: NodePlan, keys: KeyBundle, state: ModelState, transport: Transport,
    timeline: MembershipTimeline, miner: MinerFactory,
) -> MinerService | ValidatorService:
    settings, network = plan.settings, plan.network
    work = WorkConfig.of(network)
    membership = timeline.latest  # the config's fixed tables are unused beside the timeline
    last = None if settings.last_round < 0 else settings.last_round
    if settings.role == "miner":
        config = MinerConfig(
            network=network, state_dir=settings.state_dir, genesis_time=plan.genesis_time,
            validators=membership.validators,
            peers=_peers(settings, membership), work_fraction=settings.work_fraction,
            status_file=settings.status_file, last_round=last,
        )
        produce = MinerProduce(miner(keys.node_key, work), timeline, work)
        return MinerService(config, transport, state, produce, timeline=timeline)
    vconfig = ValidatorConfig(
        network=network, state_dir=settings.state_dir, genesis_time=plan.genesis_time,
        validators=membership.validators, miners=membership.miners,
        peers=_peers(settings, membership), work_fraction=settings.work_fraction,
        status_file=settings.status_file, last_round=last,
    )
    scorer = await asyncio.to_thread(scoring_certifier, network, keys.node_key,
                                     settings.state_dir)
    engine = ScoringEngine(state, scorer, timeline, work)
    chain = await asyncio.to_thread(_epoch_chain, plan, keys, timeline)
    return ValidatorService(vconfig, keys.node_key, transport, engine, chain,
                            timeline=timeline)


def _epoch_chain(plan: NodePlan, keys: KeyBundle, timeline: MembershipTimeline
                 ) -> EpochChain:
    from adapters.chain.backends import connect
    from adapters.chain.chain_settlement import ChainSettlement
    from adapters.chain.client import ChainClient

    client = ChainClient.connect(
        connect(plan.chain_url), plan.deployment, keys.evm_account,
        journal_path=plan.settings.state_dir / "weights-journal.json",
    )
    return EpochChain.connect(ChainSettlement(client), timeline)


def _cancel_on_signals() -> None:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is None:
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        # no signal handlers outside the main thread or on some platforms: Ctrl-C then ends
        # the process the default way, which is still clean for a node (state is atomic)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, task.cancel)
