"""A validator's review of another leader's certificate, against its own scoring of the round.

The reviewer recomputes everything it can: the elected leader (the attempt whose draw names the
certificate's signer, no later than the attempt the clock has reached), the previous hash, every
entry against the contributions it saw and refused (an entry it never received is verified from
the signed bytes the bundle carries; a sender it holds an equivocation proof against for the
round is disputed, protocol.equivocation), the weights of the network's mode, and the
new hash from applying the entries to a copy of its model. It also approves at most one new
model per round: two certificates of one round that are both final must give the same model, or
replicas would fork (the leader's own certificate counts as its approval of its hash).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from protocol.domain_types import Digest, ModelHash, PublicKey
from protocol.leader import LEADER_ATTEMPTS, leader_attempt, leader_sequence
from protocol.membership import MembershipTimeline, Stakes, StakesAt, stakes_at
from protocol.messages import RoundCertificate
from protocol.randomness import round_beacon
from protocol.roundlog import RoundBundle
from validator.certificate import (
    ApplyFn,
    CertificateCheck,
    Dispute,
    ReviewContext,
    WeightMode,
    check_certificate,
)
from validator.service.ports import RoundDecision

KEPT_ROUNDS = 4
"""Rounds whose decisions and reviews are kept (the replica's round and a few before it)."""


def attempt_of(
    network_id: str, cert: RoundCertificate, validators: Stakes, clock_round: int
) -> int:
    """The first attempt, up to the one in force at `clock_round`, that elects the
    certificate's signer; the attempt in force when none does (the check then disputes it)."""
    beacon = round_beacon(network_id, cert.round_index)
    latest = min(LEADER_ATTEMPTS - 1, max(0, clock_round - cert.round_index))
    for attempt, leader in enumerate(leader_sequence(beacon, validators, latest + 1)):
        if leader == cert.leader:
            return attempt
    return leader_attempt(clock_round, cert.round_index)


@dataclass(frozen=True)
class Reviewer:
    """The network facts a review needs besides the validator's own round decision.

    `validators` is the stake table of each round (a timeline or lookup), or one table for
    every round; a certificate is judged by the table of its own round."""

    network_id: str
    validators: Stakes | MembershipTimeline | StakesAt
    max_entries: int
    weight_mode: WeightMode = WeightMode.SCALARS

    def check(
        self, cert: RoundCertificate, decision: RoundDecision, clock_round: int, apply: ApplyFn,
        equivocators: Collection[PublicKey] = (),
    ) -> CertificateCheck:
        """The verdict of `validator.certificate.check_certificate` on `cert`; `equivocators`:
        the senders this validator holds equivocation proofs against for the round."""
        stakes = stakes_at(self.validators)(decision.round_index)
        ctx = ReviewContext(
            network_id=self.network_id, round_index=decision.round_index,
            certified_hash=decision.prev_model_hash, stakes=stakes,
            max_entries=self.max_entries, seen=decision.seen, rejected=decision.rejected,
            leader_attempt=attempt_of(self.network_id, cert, stakes, clock_round),
            weight_mode=self.weight_mode, equivocators=equivocators,
        )
        return check_certificate(cert, ctx, apply)


@dataclass
class ReviewBook:
    """Per round: this validator's decision, what it reviewed, and the model it approved."""

    decisions: dict[int, RoundDecision] = field(default_factory=dict)
    reviewed: dict[int, set[Digest]] = field(default_factory=dict)
    approved: dict[int, ModelHash] = field(default_factory=dict)

    def decide(self, decision: RoundDecision) -> None:
        """Keep the validator's decision for its round."""
        self.decisions[decision.round_index] = decision

    def decision(self, round_index: int) -> RoundDecision | None:
        return self.decisions.get(round_index)

    def unreviewed(
        self, round_index: int, candidates: Iterable[RoundBundle], me: PublicKey
    ) -> list[RoundBundle]:
        """Candidates of `round_index` signed by another validator and not reviewed yet."""
        seen = self.reviewed.get(round_index, set())
        return [b for b in candidates
                if b.certificate.message.leader != me and b.certificate.digest not in seen]

    def mark_reviewed(self, round_index: int, certificate_digest: Digest) -> None:
        self.reviewed.setdefault(round_index, set()).add(certificate_digest)

    def approve(self, round_index: int, new_model_hash: ModelHash) -> bool:
        """Record an approval of `new_model_hash`; False when another model was approved."""
        kept = self.approved.setdefault(round_index, new_model_hash)
        return kept == new_model_hash

    def forget_before(self, round_index: int) -> None:
        """Drop everything about rounds older than `round_index - KEPT_ROUNDS + 1`."""
        floor = round_index - KEPT_ROUNDS + 1
        for table in (self.decisions, self.reviewed, self.approved):
            for stale in [r for r in table if r < floor]:
                del table[stale]


CONFLICT = CertificateCheck(Dispute.NEW_HASH, "another model of this round is already approved")


def conflict_check(
    book: ReviewBook, round_index: int, check: CertificateCheck, new_model_hash: ModelHash
) -> CertificateCheck:
    """`check`, turned into a dispute when approving would back a second model of the round."""
    if check.approved and not book.approve(round_index, new_model_hash):
        return CONFLICT
    return check


def review_order(bundles: Sequence[RoundBundle]) -> list[RoundBundle]:
    """Candidates oldest first (by the leader's sequence), so the first leader is judged first."""
    return sorted(bundles, key=lambda b: (b.certificate.message.sequence, b.certificate.digest))
