"""Who decides what a simulated round includes: the certifier seams and an honest-only one.

A ``RoundCertifier`` turns the contributions that passed signature checks into the certified
set and its weights; an ``EnvelopeCertifier`` takes the messages as published (the validator's
``validator.scorer.ScoringCertifier`` runs its own signature, replay and deadline checks).
``EqualWeightCertifier`` includes every well-formed contribution with equal weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from protocol.domain_types import PublicKey
from protocol.messages import WEIGHT_ONE_PPB, Contribution
from training.replica import CertifiedEntry
from training.round_context import RoundContext


class RoundCertifier(Protocol):
    """Decides which contributions a round includes and with what weights."""

    def certify(
        self, ctx: RoundContext, contributions: Sequence[Contribution]
    ) -> list[CertifiedEntry]:
        """The certified (contribution, weight) entries of the round of ``ctx``."""
        ...


@runtime_checkable
class EnvelopeCertifier(Protocol):
    """A certifier that wants the round's messages as published (a validator's pipeline runs
    the signature, replay and deadline checks itself)."""

    def certify_envelopes(
        self, ctx: RoundContext, envelopes: Sequence[bytes]
    ) -> list[CertifiedEntry]:
        """The certified (contribution, weight) entries, from the raw published messages."""
        ...


class EqualWeightCertifier:
    """Includes the well-formed contributions of the round, with equal weights summing to 1.

    At most ``limit`` are included (the network's ``max_contributions_per_round``), the first by
    sender key: an honest-only stand-in for a validator's top-G by score.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def certify(
        self, ctx: RoundContext, contributions: Sequence[Contribution]
    ) -> list[CertifiedEntry]:
        """Equal weights over the admissible contributions, one per sender."""
        chosen: dict[PublicKey, Contribution] = {}
        for c in contributions:
            if _admissible(ctx, c) and c.sender not in chosen:
                chosen[c.sender] = c
        if not chosen:
            return []
        chosen = dict(sorted(chosen.items())[: self.limit])
        # A certificate carries weights in parts per billion; use exactly what it can carry.
        weight = (WEIGHT_ONE_PPB // len(chosen)) / WEIGHT_ONE_PPB
        return [(c, weight) for c in chosen.values()]


def _admissible(ctx: RoundContext, c: Contribution) -> bool:
    """Format checks only: this round, this model, a registered sender, the network's codec."""
    spec = ctx.work.direction
    return (
        c.network_id == ctx.network_id
        and c.round_index == ctx.round_index
        and c.base_model_hash == ctx.base_model_hash
        and c.sender in ctx.miner_keys
        and c.codec == ctx.work.codec.value
        and c.direction == spec.kind.value
        and c.rank == spec.rank
    )
