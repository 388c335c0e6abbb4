"""The composition root of a live node: the simulator's code, wired to sockets and a chain.

Miners run the simulator's `Miner.work` (honest or one of its attackers, see `miners`) on the
live replica, and validators decide through the simulator's certifier seams (see `engine`), so
a live round computes exactly what a simulated one does. Only this package (and the CLI) knows
every layer.

Membership is a per-round consensus input: one `MembershipTimeline` per node, seeded at start
(seedswarm.devnet.membership.resolve_timeline) and, with a chain, fed every settled epoch
snapshot while the node runs; the service, its follower, pool and engine share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from node.service.engine import ModelState, load_state
from node.service.miner import MinerConfig, MinerService
from protocol.identity import peer_id_from_public_bytes
from protocol.keystore import KeyBundle, decrypt_keystore
from protocol.membership import Membership, MembershipTimeline
from protocol.netconfig import NetworkConfig
from protocol.transport.base import Transport
from seedswarm.devnet.engine import CertifyingEngine, default_certifier, work_config
from seedswarm.devnet.membership import resolve_timeline
from seedswarm.devnet.miners import copycat_tap, live_miner, miner_produce
from seedswarm.devnet.settings import NodeSettings
from seedswarm.devnet.transport import build_transport, keep_connected
from validator.service.chain import EpochChain
from validator.service.validator import ValidatorConfig, ValidatorService


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


async def run_node(settings: NodeSettings, password: str) -> None:
    """Run one node until cancelled (SIGTERM and SIGINT cancel it cleanly)."""
    bundle = await asyncio.to_thread(load_bundle, settings, password)
    network = NetworkConfig.load(settings.network)
    state = await asyncio.to_thread(load_state, network, settings.state_dir,
                                    settings.base_checkpoint)
    transport = build_transport(settings, bundle.node_key, network.network_id)
    _cancel_on_signals()
    # The Registry when the node has a chain, the settings lists otherwise (chainless runs).
    timeline, source = await asyncio.to_thread(resolve_timeline, settings, state.round_index)
    async with transport:
        service = await _service(settings, bundle, network, state, transport, timeline)
        tap = copycat_tap(service)
        async with asyncio.TaskGroup() as group:
            group.create_task(service.run())
            group.create_task(keep_connected(transport, settings.bootstrap))
            if source is not None:  # each settled epoch snapshot, from its first round on
                group.create_task(source.feed(timeline))
            if tap is not None:  # a copycat miner copies what it hears on the gossip
                group.create_task(tap.listen(transport))


async def _service(
    settings: NodeSettings, bundle: KeyBundle, network: NetworkConfig, state: ModelState,
    transport: Transport, timeline: MembershipTimeline,
) -> MinerService | ValidatorService:
    work = work_config(network)
    membership = timeline.latest  # the config's fixed tables are unused beside the timeline
    last = None if settings.last_round < 0 else settings.last_round
    if settings.role == "miner":
        config = MinerConfig(
            network=network, state_dir=settings.state_dir, genesis_time=settings.genesis_time,
            validators=membership.validators,
            peers=_peers(settings, membership), work_fraction=settings.work_fraction,
            status_file=settings.status_file, last_round=last,
        )
        produce = miner_produce(live_miner(settings.attack, bundle.node_key, work), timeline,
                                work)
        return MinerService(config, transport, state, produce, timeline=timeline)
    vconfig = ValidatorConfig(
        network=network, state_dir=settings.state_dir, genesis_time=settings.genesis_time,
        validators=membership.validators, miners=membership.miners,
        peers=_peers(settings, membership), work_fraction=settings.work_fraction,
        status_file=settings.status_file, last_round=last,
    )
    certifier = await asyncio.to_thread(default_certifier, network, bundle.node_key,
                                        settings.state_dir)
    engine = CertifyingEngine(state, certifier, timeline, work)
    chain = await asyncio.to_thread(_epoch_chain, settings, bundle, timeline)
    return ValidatorService(vconfig, bundle.node_key, transport, engine, chain,
                            timeline=timeline)


def _epoch_chain(settings: NodeSettings, bundle: KeyBundle, timeline: MembershipTimeline
                 ) -> EpochChain | None:
    if not settings.chain or settings.deployment is None:
        return None
    from protocol.chain import ChainClient, Deployment, connect

    client = ChainClient.connect(
        connect(settings.chain), Deployment.load(settings.deployment), bundle.evm_account,
        journal_path=settings.state_dir / "weights-journal.json",
    )
    return EpochChain.connect(client, timeline)


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
