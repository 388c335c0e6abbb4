"""The round loop of an in-process swarm.

Each round: the beacon comes from the network and the round index; every miner publishes a sealed
message; the simulator opens the envelopes as any peer would (signature, network, type); the
certifier picks the included contributions and their weights; the shared model advances by
the protocol's apply rule. With ``check_replicas`` every miner also keeps its own replica,
which must land on the same hash bit for bit, and a third copy is advanced by explicit
protocol calls (seeds, dequantize, contribution_updates, apply_updates_) as a cross-check.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from node.honest_miner import HonestMiner, Miner
from protocol.apply import apply_updates_
from protocol.codecs import Codec, contribution_updates
from protocol.domain_types import ModelHash, PublicKey
from protocol.errors import ConsensusError, MessageRejected
from protocol.identity import NodeKey
from protocol.layout import ParamLayout
from protocol.messages import Contribution, ScoreReceipt
from protocol.netconfig import NetworkConfig, build_network, rule_default
from protocol.outer import nesterov_step_, state_hash
from protocol.perturb import DirectionKind, DirectionSpec
from protocol.randomness import contribution_seeds, round_beacon
from protocol.signing import open_envelope
from seedswarm.sim.certifiers import EnvelopeCertifier, RoundCertifier
from seedswarm.sim.config import SimConfig
from training.genesis import Genesis
from training.pretrain import validation_loss
from training.replica import (
    ApplyRule,
    CertifiedEntry,
    Replica,
    ScalarSource,
    canonical_order,
    contribution_scalars,
)
from training.round_context import RoundContext
from training.work import WorkConfig


@dataclass(frozen=True)
class RoundRecord:
    """What happened in one round (times in seconds, losses in nats)."""

    round_index: int
    train_loss: float
    val_loss: float
    included: int
    rejected: int
    bytes_per_miner: float
    compute_s: float
    apply_s: float
    check_s: float
    other_s: float
    model_hash: str


@dataclass
class SwarmTimes:
    """Wall time of the run by kind of work."""

    compute: float = 0.0
    apply: float = 0.0
    check: float = 0.0
    other: float = 0.0


def network_config(config: SimConfig, genesis_hash: ModelHash) -> NetworkConfig:
    """The consensus parameters of a simulated network (rules the run leaves unset keep the
    network's defaults)."""
    direction = None
    if config.direction is not None or config.direction_rank is not None:
        kind = DirectionKind(config.direction or rule_default("direction").kind.value)
        direction = DirectionSpec(kind, config.direction_rank or 1)
    return build_network(
        config.network_id, genesis_hash, task=config.task, trainable=config.trainable,
        miners=config.miners, data_seed=config.data_seed,
        codec=None if config.codec is None else Codec(config.codec), direction=direction,
        scalars=config.scalars, spsa_eps=config.spsa_eps, outer_lr=config.outer_lr,
        outer_momentum=config.outer_momentum,
        samples_per_miner=config.samples_per_miner, local_steps=config.local_steps,
        local_lr=config.local_lr,
    )


def miner_key(seed: int, index: int) -> NodeKey:
    """A reproducible identity for simulated miner ``index`` of a run seeded ``seed``."""
    raw = hashlib.blake2b(f"seedswarm-sim-miner|{seed}|{index}".encode(), digest_size=32)
    return NodeKey.from_bytes(raw.digest())


class ExplicitReplay:
    """A copy of the trainable tensors advanced by explicit protocol calls, term by term."""

    def __init__(self, named: Sequence[tuple[str, torch.Tensor]], network: NetworkConfig) -> None:
        self.named = [(name, t.detach().clone()) for name, t in named]
        self.layout = ParamLayout.of(self.named)
        self.network = network
        momentum = network.outer_momentum
        self.buffers = [torch.zeros_like(t) for _, t in self.named] if momentum else []
        self.hash = state_hash(self.named, self.buffers)

    def apply(
        self, round_index: int, entries: Sequence[CertifiedEntry], scalars_of: ScalarSource
    ) -> ModelHash:
        """Advance by one certified round; returns the new hash."""
        net = self.network
        beacon = round_beacon(net.network_id, round_index)
        updates = []
        for contribution, weight in sorted(entries, key=lambda e: e[0].sender):
            seeds = contribution_seeds(
                net.network_id, beacon, contribution.sender, round_index, len(contribution.codes)
            )
            updates += contribution_updates(
                contribution.codec, seeds, scalars_of(contribution),
                contribution.block_counts, net.outer_lr, weight,
            )
        params = [t for _, t in self.named]
        if net.outer_momentum:
            deltas = [torch.zeros_like(t) for t in params]
            apply_updates_(deltas, self.layout, updates, net.direction)
            nesterov_step_(params, self.buffers, deltas, net.outer_momentum)
        else:
            apply_updates_(params, self.layout, updates, net.direction)
        self.hash = state_hash(self.named, self.buffers)
        return self.hash


@dataclass
class Swarm:
    """A running simulated network: one shared model, miners, a certifier."""

    genesis: Genesis
    network: NetworkConfig
    work: WorkConfig
    miners: Sequence[Miner]
    certifier: RoundCertifier | EnvelopeCertifier
    check_replicas: bool = False
    fp32_scalars: bool = False
    times: SwarmTimes = field(default_factory=SwarmTimes)

    def __post_init__(self) -> None:
        rule = ApplyRule.of(self.network)
        self.replica = Replica(self.genesis.named, rule)
        if self.replica.model_hash != self.network.base_checkpoint_digest:
            raise ConsensusError("the genesis model does not match the network's base hash")
        self.peers: list[Replica] = []
        self.explicit: ExplicitReplay | None = None
        if self.check_replicas:
            self.peers = [Replica.detached_copy(self.genesis.named, rule) for _ in self.miners]
            self.explicit = ExplicitReplay(self.genesis.named, self.network)
        self.miner_keys = tuple(m.key.public.raw for m in self.miners)
        # The certified history: genesis plus this log rebuilds the model bit for bit.
        self.log: list[list[CertifiedEntry]] = []

    def context(self) -> RoundContext:
        """The context of the round about to run."""
        r = self.replica.round_index
        return RoundContext(
            network_id=self.network.network_id,
            round_index=r,
            beacon=round_beacon(self.network.network_id, r),
            base_model_hash=self.replica.model_hash,
            model=self.genesis.model,
            named=self.genesis.named,
            task=self.genesis.task,
            miner_keys=self.miner_keys,
            samples_per_miner=self.network.samples_per_miner,
            work=self.work,
            buffers=tuple(self.replica.buffers),
        )

    def validation_loss(self) -> float:
        return validation_loss(self.genesis.model, self.genesis.task)

    def receipts(self, miner: PublicKey) -> list[ScoreReceipt]:
        """The score receipts the swarm's validator issued to ``miner`` (none without one)."""
        receipts = getattr(self.certifier, "receipts", None)
        return list(receipts(miner)) if callable(receipts) else []

    def run_round(self) -> RoundRecord:
        """Run one round and return its record."""
        ctx = self.context()
        started = time.perf_counter()
        # An empty message is a miner that sent nothing this round.
        published = [raw for raw in (miner.work(ctx) for miner in self.miners) if raw]
        compute_s = time.perf_counter() - started

        mark = time.perf_counter()
        contributions, rejected = self._open(published)
        train_loss = self._train_loss(ctx)
        if isinstance(self.certifier, EnvelopeCertifier):
            entries = self.certifier.certify_envelopes(ctx, published)
        else:
            entries = self.certifier.certify(ctx, contributions)
        scalars_of = self._scalar_source()
        other_s = time.perf_counter() - mark

        mark = time.perf_counter()
        new_hash = self.replica.apply_round(entries, scalars_of=scalars_of)
        apply_s = time.perf_counter() - mark
        self.log.append(list(entries))

        mark = time.perf_counter()
        self._check(ctx.round_index, entries, new_hash, scalars_of)
        check_s = time.perf_counter() - mark

        mark = time.perf_counter()
        val_loss = self.validation_loss()
        other_s += time.perf_counter() - mark
        self._add_times(compute_s, apply_s, check_s, other_s)
        return RoundRecord(
            round_index=ctx.round_index,
            train_loss=train_loss,
            val_loss=val_loss,
            included=len(entries),
            rejected=rejected,
            bytes_per_miner=sum(map(len, published)) / max(1, len(published)),
            compute_s=compute_s,
            apply_s=apply_s,
            check_s=check_s,
            other_s=other_s,
            model_hash=new_hash.hex(),
        )

    def _open(self, published: Sequence[bytes]) -> tuple[list[Contribution], int]:
        """The contributions whose envelopes verify; and how many were refused."""
        accepted: list[Contribution] = []
        for raw in published:
            try:
                signed = open_envelope(
                    raw, network_id=self.network.network_id,
                    max_size=self.network.max_message_bytes, expect=Contribution,
                )
            except MessageRejected:
                continue
            accepted.append(signed.message)
        return accepted, len(published) - len(accepted)

    @torch.no_grad()
    def _train_loss(self, ctx: RoundContext) -> float:
        """Loss of the round's model on the data assigned this round (before the update)."""
        indices = [i for key in self.miner_keys for i in ctx.assigned_samples(key)]
        batch = self.genesis.task.train_batch(indices)
        model = self.genesis.model
        was_training = model.training
        model.eval()
        try:
            return float(model.loss(batch))
        finally:
            model.train(was_training)

    def _scalar_source(self) -> ScalarSource:
        """Dequantized codes; or, in fp32 research runs, the honest miners' raw scalars."""
        if not self.fp32_scalars:
            return contribution_scalars
        raw = {
            m.key.public.raw: m.last.raw_scalars
            for m in self.miners
            if isinstance(m, HonestMiner) and m.last is not None
        }

        def source(c: Contribution) -> Sequence[float]:
            return raw.get(c.sender) or contribution_scalars(c)

        return source

    def _check(
        self, round_index: int, entries: Sequence[CertifiedEntry], new_hash: ModelHash,
        scalars_of: ScalarSource,
    ) -> None:
        """Every peer replica and the explicit replay must reach ``new_hash`` bit for bit."""
        if not self.check_replicas:
            return
        canonical_order(entries)  # raises on a malformed certified set, like every replica
        for peer in self.peers:
            peer.apply_round(entries, expected_hash=new_hash, scalars_of=scalars_of)
            for (_, mine), (_, theirs) in zip(self.replica.named, peer.named, strict=True):
                if not torch.equal(mine.detach(), theirs):
                    raise ConsensusError(f"round {round_index}: a replica's tensors differ")
        assert self.explicit is not None
        if self.explicit.apply(round_index, entries, scalars_of) != new_hash:
            raise ConsensusError(f"round {round_index}: explicit protocol apply differs")

    def _add_times(self, compute: float, apply: float, check: float, other: float) -> None:
        self.times.compute += compute
        self.times.apply += apply
        self.times.check += check
        self.times.other += other


def honest_swarm(config: SimConfig, genesis: Genesis) -> Swarm:
    """A swarm of ``config.miners`` honest miners under the equal-weight certifier."""
    from dataclasses import replace

    return build_swarm(replace(config, scoring="equal", attackers=()), genesis)


def validator_key(seed: int, index: int = 0) -> NodeKey:
    """A reproducible identity for simulated validator ``index`` of a run seeded ``seed``."""
    raw = hashlib.blake2b(f"seedswarm-sim-validator|{seed}|{index}".encode(), digest_size=32)
    return NodeKey.from_bytes(raw.digest())


def attacker_key(seed: int, index: int) -> NodeKey:
    """A reproducible identity for simulated attacker ``index`` of a run seeded ``seed``."""
    return miner_key(seed, 1_000_000 + index)


def build_swarm(
    config: SimConfig, genesis: Genesis, honest: Sequence[HonestMiner] | None = None
) -> Swarm:
    """The swarm of ``config``: honest miners (``config.miners`` of them unless ``honest`` is
    given), then ``config.attackers``, certified by the validator pipeline (``gauntlet``) or
    with equal weights (``equal``)."""
    from seedswarm.sim.attackers import AttackSetup, build_attackers
    from seedswarm.sim.certifiers import EqualWeightCertifier
    from validator.scorer import ScoringCertifier

    network = network_config(config, genesis.model_hash)
    work = WorkConfig.of(network)
    if honest is None:
        honest = [HonestMiner(miner_key(config.seed, i)) for i in range(config.miners)]
    attackers = build_attackers(
        config.attackers, lambda i: attacker_key(config.seed, i), AttackSetup(honest, work)
    )
    certifier: RoundCertifier | EnvelopeCertifier
    if config.scoring == "gauntlet":
        certifier = ScoringCertifier(network, validator_key(config.seed))
    else:
        certifier = EqualWeightCertifier(limit=network.max_contributions_per_round)
    return Swarm(
        genesis=genesis,
        network=network,
        work=work,
        miners=[*honest, *attackers],
        certifier=certifier,
        check_replicas=config.check_replicas,
        fp32_scalars=config.scalar_format == "fp32",
    )


RoundCallback = Callable[[RoundRecord], None]


def run_rounds(
    swarm: Swarm, rounds: int, on_round: RoundCallback | None = None
) -> list[RoundRecord]:
    """Run ``rounds`` rounds, calling ``on_round`` after each."""
    records = []
    for _ in range(rounds):
        record = swarm.run_round()
        records.append(record)
        if on_round is not None:
            on_round(record)
    return records
