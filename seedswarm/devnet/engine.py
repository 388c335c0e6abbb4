"""A live validator's engine: node's model state driven by the simulator's certifier seams.

`CertifyingEngine` satisfies validator/'s `ValidatorEngine` protocol with exactly the code the
simulator runs (its scoring pipeline fed the raw envelopes), so a live round computes what a
simulated one does. `round_context` builds the simulator's view of the live replica's round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from node.replica import Replica
from node.service.engine import ModelState
from node.work import WorkConfig
from protocol.identity import NodeKey
from protocol.membership import MembershipTimeline
from protocol.messages import Contribution, ScoreReceipt
from protocol.netconfig import NetworkConfig
from protocol.randomness import round_beacon
from protocol.roundlog import CertifiedEntry, RoundBundle
from protocol.signing import Signed
from seedswarm.devnet.scoring import save_scoring, scoring_certifier
from seedswarm.sim.roles import EnvelopeCertifier, RoundCertifier, RoundContext
from seedswarm.sim.scoring import ScoringCertifier
from validator.service.ports import RoundDecision


def work_config(network: NetworkConfig) -> WorkConfig:
    """How this network's miners compute: network rules, so a validator can recompute them."""
    return WorkConfig(
        codec=network.codec, scalars=network.scalars_per_contribution, spec=network.direction,
        eps=network.spsa_eps, local_steps=network.fo_local_steps,
        local_lr=network.fo_local_lr, weight_decay=network.fo_weight_decay,
    )


def round_miners(miners: Sequence[bytes] | MembershipTimeline, round_index: int
                 ) -> tuple[bytes, ...]:
    """The miners registered for `round_index` (a fixed list holds for every round)."""
    if isinstance(miners, MembershipTimeline):
        return miners.miners_at(round_index)
    return tuple(miners)


def round_context(state: ModelState, miners: Sequence[bytes] | MembershipTimeline,
                  work: WorkConfig) -> RoundContext:
    """The simulator's view of the round the live replica is at; `miners` (the round's miner
    set, which assigns the data) is looked up for that round when it is a timeline."""
    net = state.network
    return RoundContext(
        network_id=net.network_id,
        round_index=state.round_index,
        beacon=round_beacon(net.network_id, state.round_index, state.model_hash),
        base_model_hash=state.model_hash,
        model=state.model,
        named=state.named,
        task=state.task,
        miner_keys=round_miners(miners, state.round_index),
        samples_per_miner=net.samples_per_miner,
        work=work,
    )


def default_certifier(
    network: NetworkConfig, key: NodeKey, state_dir: Path | None = None
) -> ScoringCertifier:
    """The certifier live validators use: the simulator's scoring pipeline, persisted."""
    return scoring_certifier(network, key, state_dir)


@dataclass
class CertifyingEngine:
    """`ValidatorEngine` over node's `ModelState` and the simulator's certifier seams.

    With a `ScoringCertifier` the round is scored by the validator pipeline without being
    recorded as certified; the pipeline's cascade history is fed only the bundles that became
    final, as `apply_bundle` applies them (`observe_final`), so every validator's cascade
    credits what the network really certified, whatever its own decision was.
    """

    state: ModelState
    certifier: RoundCertifier | EnvelopeCertifier
    miners: Sequence[bytes] | MembershipTimeline
    """The registered miners: a timeline (each round its own set) or one fixed list."""
    work: WorkConfig

    @property
    def round_index(self) -> int:
        return self.state.round_index

    @property
    def model_hash(self) -> bytes:
        return self.state.model_hash

    def apply_bundle(self, bundle: RoundBundle) -> bytes:
        new_hash = self.state.apply_bundle(bundle)
        self.observe_final(bundle)
        return new_hash

    def observe_final(self, bundle: RoundBundle) -> None:
        """Tell the scoring pipeline what round `bundle.round_index` finally certified."""
        if isinstance(self.certifier, ScoringCertifier):
            self.certifier.pipeline.observe_certified(bundle.round_index, bundle.entries())

    def save(self, directory: Path) -> Path:
        path = self.state.save(directory)
        if isinstance(self.certifier, ScoringCertifier):
            save_scoring(self.certifier, directory)
        return path

    def reload(self, directory: Path) -> None:
        self.state.reload(directory)

    def score(self, received: Sequence[Signed[Contribution]]) -> RoundDecision:
        """This validator's own decision for the replica's round (see `RoundDecision`)."""
        ctx = round_context(self.state, self.miners, self.work)
        # arrival order is each validator's own; the pipeline sees one canonical order
        ordered = tuple(sorted(received, key=lambda s: s.message.sender))
        if isinstance(self.certifier, ScoringCertifier):
            scoring = self.certifier.score_envelopes(ctx, [s.envelope for s in ordered])
            return RoundDecision(
                round_index=ctx.round_index, prev_model_hash=ctx.base_model_hash,
                received=ordered, entries=scoring.certified, rejected=scoring.invalid,
                unpaid=scoring.rejected - scoring.invalid,
                rewards={m: r.reward for m, r in scoring.miners.items()},
            )
        if isinstance(self.certifier, EnvelopeCertifier):
            entries = self.certifier.certify_envelopes(ctx, [s.envelope for s in ordered])
        else:
            entries = self.certifier.certify(ctx, [s.message for s in ordered])
        # a bare certifier explains nothing: it rejects nobody and its weights are its scores
        return RoundDecision(
            round_index=ctx.round_index, prev_model_hash=ctx.base_model_hash, received=ordered,
            entries=tuple(entries), rewards={c.sender: w for c, w in entries},
        )

    def audit(self, decision: RoundDecision, digests: Sequence[bytes]) -> frozenset[bytes]:
        """Full audits of `decision`'s contributions `digests`; the digests that failed. A
        certifier without a scoring pipeline audits nothing (and so finds nothing)."""
        if not isinstance(self.certifier, ScoringCertifier) or not digests:
            return frozenset()
        ctx = round_context(self.state, self.miners, self.work)
        seen = decision.seen
        known = [d for d in digests if d in seen]
        passed = self.certifier.audit(ctx, [seen[d] for d in known])
        return frozenset(d for d, ok in zip(known, passed, strict=True) if not ok)

    def preview(self, entries: Sequence[CertifiedEntry]) -> bytes:
        """The hash of the model `entries` would give, computed on a detached copy."""
        replica = self.state.replica
        copy = Replica.detached_copy(replica.named, replica.rule, replica.round_index)
        return copy.apply_round(entries)

    def receipt(self, miner: bytes, round_index: int) -> ScoreReceipt | None:
        """The scoring pipeline's receipt for ``miner`` in ``round_index``, if it scored it."""
        if isinstance(self.certifier, ScoringCertifier):
            return self.certifier.receipt(miner, round_index)
        return None

    def validation_loss(self) -> float:
        return self.state.validation_loss()
