"""The network bench's no-scoring baseline: a validator engine that certifies every admissible
contribution with equal weight (`--certifier equal`), to isolate the network's own overhead."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from protocol.messages import Contribution
from protocol.signing import Signed
from seedswarm.sim.certifiers import EqualWeightCertifier
from validator.service.engine import ScoringEngine
from validator.service.ports import RoundDecision


@dataclass
class EqualWeightEngine(ScoringEngine):
    """`ScoringEngine` whose decision is `EqualWeightCertifier`'s (its scorer never scores)."""

    def score(self, received: Sequence[Signed[Contribution]]) -> RoundDecision:
        ctx = self.round_context()
        ordered = tuple(sorted(received, key=lambda s: s.message.sender))
        certifier = EqualWeightCertifier(self.state.network.max_contributions_per_round)
        entries = tuple(certifier.certify(ctx, [s.message for s in ordered]))
        return RoundDecision(
            round_index=ctx.round_index, prev_model_hash=ctx.base_model_hash, received=ordered,
            entries=entries, rewards={c.sender: w for c, w in entries},
        )
