"""An equivocating miner against live validator services, in one process (issue 15, defect 3).

The equivocator runs the honest miner's code, but its transport hands each validator its own
version of each contribution (the same work, the sequence moved by the validator's position,
signed again), so no two validators see the same version and only a leader's bundle can show
a reviewer another. Three validators with equal stake: a round is final once two approve.
`run_equivocation` runs the real `ValidatorService` and `MinerService` classes over the
in-memory transport and reports how long each round took to become final and what the
equivocator earned.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, replace
from pathlib import Path

from adapters.transport.base import Limits
from adapters.transport.memory import MemoryNetwork, MemoryTransport
from node.honest_miner import HonestMiner
from node.service.miner import MinerConfig, MinerService
from node.service.produce import MinerProduce
from protocol.identity import NodeKey
from protocol.messages import Contribution
from protocol.netconfig import NetworkConfig
from protocol.roundlog import TOPIC_CONTRIBUTIONS
from protocol.signing import open_envelope, seal
from runtime.model_state import ModelState
from seedswarm.devnet.calibration import cores, measure_round
from seedswarm.devnet.devnet_genesis import network_config, write_base
from seedswarm.devnet.spec import DevnetSpec
from seedswarm.launch.settings import DEFAULT_WORK_FRACTION
from training.work import WorkConfig
from validator.scorer_store import scoring_certifier
from validator.service.engine import ScoringEngine
from validator.service.validator import ValidatorConfig, ValidatorService

LIMITS = Limits(max_message_bytes=1 << 20)
VALIDATORS = 3
SLACK_ROUNDS = 12
"""Rounds' worth of time a run may take beyond the rounds it runs (a busy machine)."""


def node_key(label: str) -> NodeKey:
    """A reproducible key named `label`."""
    return NodeKey.from_bytes(hashlib.sha256(f"equivocation:{label}".encode()).digest())


class EquivocatingTransport(MemoryTransport):
    """A miner's in-memory transport that sends the i-th peer of `targets` its own valid
    version of each contribution (sequence + i, signed again); everyone else gets version 0."""

    def __init__(self, medium: MemoryNetwork, key: NodeKey, *, network_id: str,
                 targets: tuple[str, ...]) -> None:
        super().__init__(medium, key.peer_id, network_id=network_id, limits=LIMITS)
        self.key = key
        self.targets = targets
        self.versions_sent = 0

    async def _send_publish(self, topic: str, data: bytes) -> None:
        if topic != TOPIC_CONTRIBUTIONS:
            await super()._send_publish(topic, data)
            return
        message = open_envelope(data, network_id=self._network_id, expect=Contribution).message
        versions = [data] + [seal(replace(message, sequence=message.sequence + i), self.key)
                             for i in range(1, len(self.targets))]
        for node in self._network.members(self._network_id):
            at = self.targets.index(node.peer_id) if node.peer_id in self.targets else 0
            node._deliver(topic, versions[at], self._peer_id)
        self.versions_sent += len(versions)
        await asyncio.sleep(0)


@dataclass(frozen=True)
class EquivocationRun:
    """What one run showed."""

    rounds: int
    final_in: tuple[int, ...]
    """Per round: the clock round in which a validator first applied it."""
    equivocator_certified: int
    """Final rounds whose certificate includes the equivocator."""
    honest_certified: float
    """Share of (round, honest miner) pairs certified in the final bundles."""
    equivocator_reward_share: float
    """The equivocator's share of the validators' epoch scores (what they submit on-chain)."""
    proven_by: int
    """Validators holding a proof against the equivocator (0 without the rule)."""
    disputes: tuple[str, ...]

    @property
    def stall_rounds(self) -> int:
        """The most clock rounds that passed in a row with no round becoming final (0: a
        round became final in every clock round)."""
        previous = (-1, *self.final_in[:-1])
        return max((b - a - 1 for a, b in zip(previous, self.final_in, strict=True)),
                   default=0)


async def _run(network: NetworkConfig, base: Path, tmp: Path, rounds: int,
               honest_miners: int, equivocate: bool) -> EquivocationRun:
    medium = MemoryNetwork()
    work = WorkConfig.of(network)
    validators = [node_key(f"validator-{i}") for i in range(VALIDATORS)]
    honest = [node_key(f"miner-{i}") for i in range(honest_miners)]
    cheat = node_key("equivocator")
    miners = tuple(k.public.raw for k in [*honest, cheat])
    stakes = tuple((k.public.raw, 1) for k in validators)
    states = [ModelState.from_base(network, base) for _ in range(VALIDATORS + len(miners))]
    common = {"network": network, "genesis_time": time.time() + network.round_length + 2.0,
              "validators": stakes, "peers": tuple(k.peer_id for k in validators),
              "last_round": rounds}

    def transport(key: NodeKey) -> MemoryTransport:
        return MemoryTransport(medium, key.peer_id, network_id=network.network_id, limits=LIMITS)

    vservices = []
    for i, key in enumerate(validators):
        config = ValidatorConfig(state_dir=tmp / f"v{i}", miners=miners,
                                 **common)  # type: ignore[arg-type]
        engine = ScoringEngine(states.pop(), scoring_certifier(network, key, tmp / f"v{i}"),
                               miners, work)
        vservices.append(ValidatorService(config, key, transport(key), engine))
    mservices = []
    for i, key in enumerate([*honest, cheat]):
        mconfig = MinerConfig(state_dir=tmp / f"m{i}", **common)  # type: ignore[arg-type]
        produce = MinerProduce(HonestMiner(key), miners, work)
        net = (EquivocatingTransport(medium, key, network_id=network.network_id,
                                     targets=tuple(k.peer_id for k in validators))
               if key is cheat and equivocate else transport(key))
        mservices.append(MinerService(mconfig, net, states.pop(), produce))
    services: list[MinerService | ValidatorService] = [*vservices, *mservices]
    for s in services:
        await s.transport.start()
    try:
        limit = (rounds + SLACK_ROUNDS) * network.round_length
        async with asyncio.timeout(limit), asyncio.TaskGroup() as group:
            tasks = [group.create_task(s.run()) for s in services]
            while not all(s.follower.replica.round_index >= rounds for s in services):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            for task in tasks:
                task.cancel()
    finally:
        for s in services:
            await s.transport.stop()
    return _report(vservices, rounds, honest, cheat)


def _report(vservices: list[ValidatorService], rounds: int, honest: list[NodeKey],
            cheat: NodeKey) -> EquivocationRun:
    first = vservices[0]
    final_in: list[int] = []
    certified_cheat, certified_honest = 0, 0
    for r in range(rounds):
        applied = [f.applied_at for v in vservices for f in v.follower.finals
                   if f.round_index == r]
        final_in.append(first.clock.phase(min(applied)).round_index)
        raw = first.follower.store.get(r)
        assert raw is not None, f"round {r} missing from the log"
        senders = {e.sender for e in first.follower.open_entry(raw).bundle.certificate.message
                   .entries}
        certified_cheat += cheat.public.raw in senders
        certified_honest += sum(k.public.raw in senders for k in honest)
    totals: dict[str, float] = {}
    for v in vservices:
        for record in v.ledger.epochs.values():
            for miner, score in record.scores.items():
                totals[miner] = totals.get(miner, 0.0) + max(0.0, score)
    paid = sum(totals.values())
    proven = sum(cheat.public.raw in {bytes.fromhex(m) for _, m in
                                      getattr(v, "equivocators", ())} for v in vservices)
    return EquivocationRun(
        rounds=rounds, final_in=tuple(final_in), equivocator_certified=certified_cheat,
        honest_certified=certified_honest / max(1, rounds * len(honest)),
        equivocator_reward_share=totals.get(cheat.public.raw.hex(), 0.0) / paid if paid else 0.0,
        proven_by=proven, disputes=tuple(d for v in vservices for _, d in v.disputes),
    )


def run_equivocation(network: NetworkConfig, base: Path, tmp: Path, *, rounds: int = 3,
                     honest_miners: int = 2, equivocate: bool = True) -> EquivocationRun:
    """Three equal validators, `honest_miners` honest miners and one equivocator, for `rounds`
    rounds on `network` (its base checkpoint at `base`); TimeoutError if the rounds do not all
    become final within `rounds + SLACK_ROUNDS` rounds. `equivocate=False`: the same miner
    sends one version to everyone (the baseline)."""
    return asyncio.run(_run(network, base, tmp, rounds, honest_miners, equivocate))


def scenario_network(base: Path, rounds: int, honest_miners: int = 2) -> NetworkConfig:
    """The devnet network of this scenario, its base checkpoint written at `base` and its round
    length measured now on this machine (seedswarm.devnet.calibration)."""
    spec = DevnetSpec(miners=honest_miners + 1, validators=VALIDATORS, rounds=rounds)
    model_hash, _ = write_base(spec, base)
    cost = measure_round(network_config(spec, model_hash), base, spec.total_miners)
    length = cost.round_length(spec.total_miners + spec.validators, DEFAULT_WORK_FRACTION,
                               cores())
    return network_config(replace(spec, round_length=length), model_hash)
