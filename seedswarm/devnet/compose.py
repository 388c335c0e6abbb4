"""The composition root of a live node: the simulator's code, wired to sockets and a chain.

Miners run the simulator's `Miner.work` (honest or one of its attackers) on a `RoundContext`
built from the live replica, and validators decide through the simulator's certifier seams
(by default its scoring pipeline, fed the raw envelopes), so a live round computes exactly
what a simulated one does. Only this module (and the CLI) knows every layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from node.service.engine import ModelState, load_state
from node.service.miner import MinerConfig, MinerService, Produce
from node.work import WorkConfig
from protocol.errors import ConfigError
from protocol.identity import NodeKey, peer_id_from_public_bytes
from protocol.keystore import KeyBundle, decrypt_keystore
from protocol.messages import Contribution, ScoreReceipt
from protocol.netconfig import NetworkConfig
from protocol.randomness import round_beacon
from protocol.roundlog import CertifiedEntry, RoundBundle
from protocol.signing import Signed
from protocol.transport.base import Limits, Transport
from protocol.transport.core import TransportCore
from seedswarm.devnet.scoring import save_scoring, scoring_certifier
from seedswarm.devnet.settings import NodeSettings
from seedswarm.sim.attackers import ATTACKS, Attacker, AttackSetup
from seedswarm.sim.roles import (
    EnvelopeCertifier,
    HonestMiner,
    Miner,
    RoundCertifier,
    RoundContext,
)
from seedswarm.sim.scoring import ScoringCertifier
from validator.service.chain import EpochChain
from validator.service.validator import ValidatorConfig, ValidatorService

_log = logging.getLogger("seedswarm.devnet.compose")

TRANSPORT_MESSAGE_LIMIT = 1 << 20
"""Bundles and log answers carry many envelopes; single envelopes keep the network's limit."""


def work_config(network: NetworkConfig) -> WorkConfig:
    """How this network's miners compute: network rules, so a validator can recompute them."""
    return WorkConfig(
        codec=network.codec, scalars=network.scalars_per_contribution, spec=network.direction,
        eps=network.spsa_eps, local_steps=network.fo_local_steps,
        local_lr=network.fo_local_lr, weight_decay=network.fo_weight_decay,
    )


def round_context(state: ModelState, miners: Sequence[bytes], work: WorkConfig) -> RoundContext:
    """The simulator's view of the round the live replica is at."""
    net = state.network
    return RoundContext(
        network_id=net.network_id,
        round_index=state.round_index,
        beacon=round_beacon(net.network_id, state.round_index, state.model_hash),
        base_model_hash=state.model_hash,
        model=state.model,
        named=state.named,
        task=state.task,
        miner_keys=tuple(miners),
        samples_per_miner=net.samples_per_miner,
        work=work,
    )


def miner_produce(miner: Miner, miners: Sequence[bytes], work: WorkConfig) -> Produce:
    """`Produce` for the miner service: the simulator's `miner.work` on the live round."""

    def produce(state: ModelState) -> bytes:
        if isinstance(miner, HonestMiner | Attacker):
            # sequences must grow across restarts (protocol.replay): start from the clock
            miner.sequence = max(miner.sequence, time.time_ns() // 1000)
        return miner.work(round_context(state, miners, work))

    return produce


LIVE_ATTACKS = tuple(sorted(k for k in ATTACKS if k != "copycat"))
"""Attacks one process can run alone (a copycat needs its victim's miner in-process)."""


def live_miner(attack: str, key: NodeKey, work: WorkConfig) -> Miner:
    """The miner a process runs: honest, or the simulator's attacker class ``attack``."""
    if not attack:
        return HonestMiner(key)
    if attack not in LIVE_ATTACKS:
        raise ConfigError(f"attack {attack!r} cannot run live; known: {', '.join(LIVE_ATTACKS)}")
    return ATTACKS[attack]([key], AttackSetup(honest=(), work=work))[0]


def default_certifier(
    network: NetworkConfig, key: NodeKey, state_dir: Path | None = None
) -> ScoringCertifier:
    """The certifier live validators use: the simulator's scoring pipeline, persisted."""
    return scoring_certifier(network, key, state_dir)


@dataclass
class CertifyingEngine:
    """`ValidatorEngine` over node's `ModelState` and the simulator's certifier seams."""

    state: ModelState
    certifier: RoundCertifier | EnvelopeCertifier
    miners: tuple[bytes, ...]
    work: WorkConfig

    @property
    def round_index(self) -> int:
        return self.state.round_index

    @property
    def model_hash(self) -> bytes:
        return self.state.model_hash

    def apply_bundle(self, bundle: RoundBundle) -> bytes:
        return self.state.apply_bundle(bundle)

    def save(self, directory: Path) -> Path:
        path = self.state.save(directory)
        if isinstance(self.certifier, ScoringCertifier):
            save_scoring(self.certifier, directory)
        return path

    def reload(self, directory: Path) -> None:
        self.state.reload(directory)

    def certify(self, received: Sequence[Signed[Contribution]]) -> list[CertifiedEntry]:
        ctx = round_context(self.state, self.miners, self.work)
        # arrival order is each validator's own; the pipeline sees one canonical order
        ordered = sorted(received, key=lambda s: s.message.sender)
        if isinstance(self.certifier, EnvelopeCertifier):
            return self.certifier.certify_envelopes(ctx, [s.envelope for s in ordered])
        return self.certifier.certify(ctx, [s.message for s in ordered])

    def receipt(self, miner: bytes, round_index: int) -> ScoreReceipt | None:
        """The scoring pipeline's receipt for ``miner`` in ``round_index``, if it scored it."""
        if isinstance(self.certifier, ScoringCertifier):
            return self.certifier.receipt(miner, round_index)
        return None

    def apply_entries(self, entries: Sequence[CertifiedEntry]) -> bytes:
        return self.state.replica.apply_round(entries)

    def validation_loss(self) -> float:
        return self.state.validation_loss()


def load_bundle(settings: NodeSettings, password: str) -> KeyBundle:
    """Decrypt the node's keystore (directory or file)."""
    path = settings.keystore
    if path.is_dir():
        path = path / "keystore.json"
    return decrypt_keystore(path.read_text(encoding="utf-8"), password)


def build_transport(settings: NodeSettings, key: NodeKey, network_id: str) -> TransportCore:
    """The node's transport as its settings describe it."""
    limits = Limits(max_message_bytes=TRANSPORT_MESSAGE_LIMIT)
    if settings.transport == "mqtt":
        from protocol.transport.mqtt import MqttConfig, MqttTransport

        config = MqttConfig(host=settings.mqtt_host, port=settings.mqtt_port)
        return MqttTransport(config, peer_id=key.peer_id, network_id=network_id, limits=limits)
    from protocol.transport.libp2p_host import Libp2pConfig
    from protocol.transport.libp2p_transport import Libp2pTransport

    p2p = Libp2pConfig(key_seed=key.to_bytes(), listen_port=settings.listen_port,
                       bootstrap=settings.bootstrap)
    return Libp2pTransport(p2p, network_id=network_id, limits=limits)


async def keep_connected(transport: Transport, bootstrap: Sequence[str]) -> None:
    """libp2p only: re-dial bootstrap peers that dropped (a restarted peer, a lost link)."""
    from protocol.transport.libp2p_transport import Libp2pTransport

    if not isinstance(transport, Libp2pTransport) or not bootstrap:
        return
    while True:
        connected = set(transport.connected_peers())
        for addr in bootstrap:
            if addr.rsplit("/p2p/", 1)[-1] not in connected:
                with contextlib.suppress(Exception):
                    await transport.connect(addr)
        await asyncio.sleep(1.0)  # connectivity has no event to wait on; re-check each second


def _keys(hexes: Sequence[str]) -> tuple[bytes, ...]:
    return tuple(bytes.fromhex(h) for h in hexes)


def _peers(settings: NodeSettings) -> tuple[str, ...]:
    if settings.peers:
        return settings.peers
    keys = [bytes.fromhex(k) for k, _ in settings.validators] + list(_keys(settings.miners))
    return tuple(peer_id_from_public_bytes(k) for k in keys)


async def run_node(settings: NodeSettings, password: str) -> None:
    """Run one node until cancelled (SIGTERM and SIGINT cancel it cleanly)."""
    bundle = await asyncio.to_thread(load_bundle, settings, password)
    network = NetworkConfig.load(settings.network)
    state = await asyncio.to_thread(load_state, network, settings.state_dir,
                                    settings.base_checkpoint)
    transport = build_transport(settings, bundle.node_key, network.network_id)
    _cancel_on_signals()
    async with transport:
        service = await _service(settings, bundle, network, state, transport)
        async with asyncio.TaskGroup() as group:
            group.create_task(service.run())
            group.create_task(keep_connected(transport, settings.bootstrap))


async def _service(
    settings: NodeSettings, bundle: KeyBundle, network: NetworkConfig, state: ModelState,
    transport: Transport,
) -> MinerService | ValidatorService:
    work = work_config(network)
    miners = _keys(settings.miners)
    last = None if settings.last_round < 0 else settings.last_round
    if settings.role == "miner":
        config = MinerConfig(
            network=network, state_dir=settings.state_dir, genesis_time=settings.genesis_time,
            validators=tuple((bytes.fromhex(k), s) for k, s in settings.validators),
            peers=_peers(settings), work_fraction=settings.work_fraction,
            status_file=settings.status_file, last_round=last,
        )
        produce = miner_produce(live_miner(settings.attack, bundle.node_key, work), miners, work)
        return MinerService(config, transport, state, produce)
    vconfig = ValidatorConfig(
        network=network, state_dir=settings.state_dir, genesis_time=settings.genesis_time,
        validators=tuple((bytes.fromhex(k), s) for k, s in settings.validators), miners=miners,
        peers=_peers(settings), work_fraction=settings.work_fraction,
        status_file=settings.status_file, last_round=last,
    )
    certifier = await asyncio.to_thread(default_certifier, network, bundle.node_key,
                                        settings.state_dir)
    engine = CertifyingEngine(state, certifier, miners, work)
    chain = await asyncio.to_thread(_epoch_chain, settings, bundle)
    return ValidatorService(vconfig, bundle.node_key, transport, engine, chain)


def _epoch_chain(settings: NodeSettings, bundle: KeyBundle) -> EpochChain | None:
    if not settings.chain or settings.deployment is None:
        return None
    from protocol.chain import ChainClient, Deployment, connect

    client = ChainClient.connect(
        connect(settings.chain), Deployment.load(settings.deployment), bundle.evm_account,
        journal_path=settings.state_dir / "weights-journal.json",
    )
    return EpochChain.connect(client)


def _cancel_on_signals() -> None:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is None:
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, task.cancel)
