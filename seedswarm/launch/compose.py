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
import signal
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from adapters.storage.keystore import KeyBundle, decrypt_keystore
from adapters.transport.base import Transport
from node.honest_miner import HonestMiner, Miner
from node.service.miner import MinerConfig, MinerService
from node.service.produce import MinerProduce
from protocol.identity import NodeKey, peer_id_from_public_bytes
from protocol.membership import Membership, MembershipTimeline
from protocol.netconfig import NetworkConfig
from runtime.model_state import ModelState, load_state
from seedswarm.launch.membership_source import resolve_timeline
from seedswarm.launch.node_transport import build_transport, keep_connected
from seedswarm.launch.settings import NodeSettings
from training.work import WorkConfig
from validator.scorer_store import scoring_certifier
from validator.service.engine import ScoringEngine
from validator.service.epoch_chain import EpochChain
from validator.service.validator import ValidatorConfig, ValidatorService

MinerFactory = Callable[[NodeKey, WorkConfig], Miner]
"""Builds the `Miner` a miner node runs from its key and the network's work rules."""

Sidecar = Callable[
    [MinerService | ValidatorService, Transport], Coroutine[Any, Any, None] | None
]
"""A task to run beside the service for as long as it runs (None: nothing to run)."""


def honest_miner(key: NodeKey, work: WorkConfig) -> Miner:
    """The miner every production node runs."""
    return HonestMiner(key)


def load_bundle(settings: NodeSettings, password: str) -> KeyBundle:
    """Decrypt the node's keystore (directory or file)."""
    path = settings.keystore
    if path.is_dir():
        path = path / "keystore.json"
    return decrypt_keystore(path.read_text(encoding="utf-8"), password)


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
    bundle = await asyncio.to_thread(load_bundle, settings, password)
    network = NetworkConfig.load(settings.network)
    state = await asyncio.to_thread(load_state, network, settings.state_dir,
                                    settings.base_checkpoint)
    transport = build_transport(settings, bundle.node_key, network.network_id)
    _cancel_on_signals()
    # The Registry when the node has a chain, the settings lists otherwise (chainless runs).
    timeline, source = await asyncio.to_thread(resolve_timeline, settings, state.round_index)
    async with transport:
        service = await _service(settings, bundle, network, state, transport, timeline, miner)
        async with asyncio.TaskGroup() as group:
            group.create_task(service.run())
            group.create_task(keep_connected(transport, settings.bootstrap))
            if source is not None:  # each settled epoch snapshot, from its first round on
                group.create_task(source.feed(timeline))
            for sidecar in sidecars:
                task = sidecar(service, transport)
                if task is not None:
                    group.create_task(task)


async def _service(
    settings: NodeSettings, bundle: KeyBundle, network: NetworkConfig, state: ModelState,
    transport: Transport, timeline: MembershipTimeline, miner: MinerFactory,
) -> MinerService | ValidatorService:
    work = WorkConfig.of(network)
    membership = timeline.latest  # the config's fixed tables are unused beside the timeline
    last = None if settings.last_round < 0 else settings.last_round
    if settings.role == "miner":
        config = MinerConfig(
            network=network, state_dir=settings.state_dir, genesis_time=settings.genesis_time,
            validators=membership.validators,
            peers=_peers(settings, membership), work_fraction=settings.work_fraction,
            status_file=settings.status_file, last_round=last,
        )
        produce = MinerProduce(miner(bundle.node_key, work), timeline, work)
        return MinerService(config, transport, state, produce, timeline=timeline)
    vconfig = ValidatorConfig(
        network=network, state_dir=settings.state_dir, genesis_time=settings.genesis_time,
        validators=membership.validators, miners=membership.miners,
        peers=_peers(settings, membership), work_fraction=settings.work_fraction,
        status_file=settings.status_file, last_round=last,
    )
    scorer = await asyncio.to_thread(scoring_certifier, network, bundle.node_key,
                                     settings.state_dir)
    engine = ScoringEngine(state, scorer, timeline, work)
    chain = await asyncio.to_thread(_epoch_chain, settings, bundle, timeline)
    return ValidatorService(vconfig, bundle.node_key, transport, engine, chain,
                            timeline=timeline)


def _epoch_chain(settings: NodeSettings, bundle: KeyBundle, timeline: MembershipTimeline
                 ) -> EpochChain | None:
    if not settings.chain or settings.deployment is None:
        return None
    from adapters.chain import ChainClient, Deployment, connect
    from adapters.chain.chain_settlement import ChainSettlement

    client = ChainClient.connect(
        connect(settings.chain), Deployment.load(settings.deployment), bundle.evm_account,
        journal_path=settings.state_dir / "weights-journal.json",
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
