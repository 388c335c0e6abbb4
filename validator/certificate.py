"""The round certificate: the leader's proposal, the others' review, and finality.

* Leader (``build_certificate``): the top-G passing contributions by score (ties: smaller sender
  key), one per sender, weighted in parts per billion that sum to exactly 1e9, listed in the
  canonical apply order (by sender key), with the model hash that applying them gives. The hash
  comes from an injected ``ApplyFn``: applying needs the model, which validator/ does not hold.
* Reviewer (``review_certificate``): envelope and signature, network and round, the leader the
  beacon elects, the previous hash equal to its own certified hash, at most G entries in
  canonical order, no sender it holds an equivocation proof against for the round
  (protocol.equivocation), every entry a contribution it has seen or verified from the leader's
  bundle (sender matching) and did not reject
  (filters, verification, or the value gate: a contribution this reviewer would not pay), weights
  summing to 1e9 with none zero and, in ``EQUAL`` and ``SCALARS`` modes, exactly the weights the
  mode gives the included entries, and the new hash equal to its own apply. (``PROPORTIONAL``
  weights come from the leader's scores, which a reviewer cannot reproduce: only their sum is
  checked.) The verdict
  becomes a ``CertificateEndorsement`` (approve, or dispute with the reason).
* Finality is protocol.finality's rule (``is_final``, ``approving_stake``): approvals (the
  leader's signature counts as one) from validators holding more than ``threshold`` of the stake;
  followers apply final rounds only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from itertools import pairwise

from protocol.domain_types import Digest, ModelHash, PublicKey, Wei
from protocol.errors import ConsensusError, MessageRejected, SeedswarmError
from protocol.identity import NodeKey
from protocol.leader import select_leader
from protocol.messages import (
    WEIGHT_ONE_PPB,
    CertEntry,
    CertificateEndorsement,
    Contribution,
    RoundCertificate,
)
from protocol.randomness import round_beacon
from protocol.signing import Signed, message_digest, open_envelope, seal

WeightedContribution = tuple[Contribution, float]
ApplyFn = Callable[[Sequence[WeightedContribution]], ModelHash]
"""Applies (contribution, weight) pairs to a *copy* of the certified model; returns its hash."""


class WeightMode(StrEnum):
    """How the leader turns the included contributions' scores into weights."""

    EQUAL = "equal"  # a plain average, as Templar's gather
    PROPORTIONAL = "proportional"  # by positive score
    # By scalar count K: each contribution is an unbiased estimate of its sender's update whose
    # projection noise has variance ~ d/K, so weights proportional to K are the inverse-variance
    # average (miners of different capacity; with equal K it is EQUAL).
    SCALARS = "scalars"


@dataclass(frozen=True)
class Candidate:
    """A contribution that passed filters and verification, its envelope digest and score."""

    contribution: Contribution
    digest: Digest
    score: float


def select_top(
    candidates: Iterable[Candidate], limit: int, mode: WeightMode = WeightMode.EQUAL
) -> list[Candidate]:
    """The best ``limit`` candidates, one per sender, highest score first (ties: sender key).

    Non-finite scores never qualify; in proportional mode neither do scores <= 0.
    """
    best: dict[PublicKey, Candidate] = {}
    for c in candidates:
        if not math.isfinite(c.score) or (mode is WeightMode.PROPORTIONAL and c.score <= 0.0):
            continue
        kept = best.get(c.contribution.sender)
        if kept is None or (-c.score, c.digest) < (-kept.score, kept.digest):
            best[c.contribution.sender] = c
    ranked = sorted(best.values(), key=lambda c: (-c.score, c.contribution.sender))
    return ranked[: max(0, limit)]


def allocate_ppb(shares: Sequence[Fraction]) -> list[int]:
    """Integer weights proportional to ``shares`` (positive) summing to exactly 1e9.

    Largest remainder on exact rationals; ties go to the earlier share.
    """
    if not shares:
        return []
    total = sum(shares, Fraction(0))
    if total <= 0 or any(s < 0 for s in shares):
        raise ConsensusError("weights need non-negative shares with a positive sum")
    quotas = [WEIGHT_ONE_PPB * s / total for s in shares]
    weights = [math.floor(q) for q in quotas]
    leftover = WEIGHT_ONE_PPB - sum(weights)
    order = sorted(range(len(shares)), key=lambda i: (-(quotas[i] - weights[i]), i))
    for i in order[:leftover]:
        weights[i] += 1
    return weights


def entry_weight(weight_ppb: int) -> float:
    """The weight a replica applies for a certificate entry."""
    return weight_ppb / WEIGHT_ONE_PPB


def mode_shares(
    contributions: Sequence[Contribution], mode: WeightMode
) -> list[Fraction] | None:
    """The shares ``mode`` gives ``contributions``; None for ``PROPORTIONAL`` (score based)."""
    if mode is WeightMode.EQUAL:
        return [Fraction(1)] * len(contributions)
    if mode is WeightMode.SCALARS:
        return [Fraction(c.scalars) for c in contributions]
    return None


def certificate_entries(chosen: Sequence[Candidate], mode: WeightMode) -> list[CertEntry]:
    """Entries in canonical order (by sender) with weights summing to 1e9; zero weights dropped."""
    ordered = sorted(chosen, key=lambda c: c.contribution.sender)
    shares = mode_shares([c.contribution for c in ordered], mode)
    if shares is None:
        shares = [Fraction(c.score) for c in ordered]
    weights = allocate_ppb(shares)
    return [
        CertEntry(c.contribution.sender, c.digest, w)
        for c, w in zip(ordered, weights, strict=True)
        if w > 0
    ]


def build_certificate(
    *,
    leader: NodeKey,
    network_id: str,
    round_index: int,
    sequence: int,
    prev_model_hash: ModelHash,
    candidates: Iterable[Candidate],
    limit: int,
    apply: ApplyFn,
    mode: WeightMode = WeightMode.EQUAL,
) -> tuple[RoundCertificate, bytes]:
    """The leader's certificate for the round and its sealed envelope."""
    chosen = select_top(candidates, limit, mode)
    entries = certificate_entries(chosen, mode)
    by_digest = {c.digest: c.contribution for c in chosen}
    applied = [(by_digest[e.contribution_digest], entry_weight(e.weight_ppb)) for e in entries]
    cert = RoundCertificate(
        network_id=network_id,
        round_index=round_index,
        leader=leader.public.raw,
        sequence=sequence,
        prev_model_hash=prev_model_hash,
        entries=tuple(entries),
        new_model_hash=apply(applied),
    )
    return cert, seal(cert, leader)


class Dispute(StrEnum):
    """Why a reviewer refuses a certificate (``NONE`` when it approves)."""

    NONE = "none"
    BAD_ENVELOPE = "bad_envelope"
    WRONG_ROUND = "wrong_round"
    WRONG_LEADER = "wrong_leader"
    PREV_HASH = "prev_hash_mismatch"
    TOO_MANY_ENTRIES = "too_many_entries"
    NOT_CANONICAL = "entries_not_in_canonical_order"
    UNKNOWN_CONTRIBUTION = "unknown_contribution"
    EQUIVOCATOR = "includes_proven_equivocator"
    SENDER_MISMATCH = "entry_sender_mismatch"
    REJECTED_CONTRIBUTION = "includes_rejected_contribution"
    WEIGHTS = "weights_do_not_sum"
    WEIGHT_MODE = "weights_not_by_mode"
    APPLY_FAILED = "apply_failed"
    NEW_HASH = "new_hash_mismatch"


@dataclass(frozen=True)
class CertificateCheck:
    """A reviewer's verdict on one certificate."""

    dispute: Dispute
    detail: str = ""

    @property
    def approved(self) -> bool:
        return self.dispute is Dispute.NONE

    @property
    def reason(self) -> str:
        return "approved" if self.approved else f"{self.dispute.value}: {self.detail}"[:256]


APPROVED = CertificateCheck(Dispute.NONE)


@dataclass(frozen=True)
class ReviewContext:
    """What a reviewer compares a certificate with: its own view of the round."""

    network_id: str
    round_index: int
    certified_hash: ModelHash
    stakes: Sequence[tuple[PublicKey, Wei]]
    max_entries: int
    seen: Mapping[Digest, Contribution]  # envelope digest -> contribution it received
    # Digests it found invalid: filters, failed verification, banned sender
    # (``RoundScoring.invalid``; a stricter reviewer may pass ``RoundScoring.rejected``).
    rejected: Collection[Digest] = ()
    leader_attempt: int = 0
    weight_mode: WeightMode = WeightMode.SCALARS  # the network's certificate mode
    # Senders it holds a proof against for this round (protocol.equivocation): never included.
    equivocators: Collection[PublicKey] = ()


def check_certificate(
    cert: RoundCertificate, ctx: ReviewContext, apply: ApplyFn
) -> CertificateCheck:
    """Every rule of the module docstring, cheapest first; ``apply`` runs only at the end."""
    if cert.network_id != ctx.network_id or cert.round_index != ctx.round_index:
        return CertificateCheck(Dispute.WRONG_ROUND, f"round {cert.round_index}")
    if cert.prev_model_hash != ctx.certified_hash:
        return CertificateCheck(Dispute.PREV_HASH, cert.prev_model_hash.hex()[:16])
    beacon = round_beacon(ctx.network_id, ctx.round_index)
    expected = select_leader(beacon, ctx.stakes, ctx.leader_attempt)
    if cert.leader != expected:
        return CertificateCheck(Dispute.WRONG_LEADER, f"expected {expected.hex()[:16]}")
    structure = check_entries(cert, ctx)
    if not structure.approved:
        return structure
    applied = [(ctx.seen[e.contribution_digest], entry_weight(e.weight_ppb)) for e in cert.entries]
    try:
        new_hash = apply(applied)
    except SeedswarmError as exc:
        return CertificateCheck(Dispute.APPLY_FAILED, str(exc))
    if new_hash != cert.new_model_hash:
        return CertificateCheck(Dispute.NEW_HASH, f"own apply gives {new_hash.hex()[:16]}")
    return APPROVED


def check_entries(cert: RoundCertificate, ctx: ReviewContext) -> CertificateCheck:
    """Count, canonical order, known and accepted contributions, weights."""
    entries = cert.entries
    if len(entries) > ctx.max_entries:
        return CertificateCheck(Dispute.TOO_MANY_ENTRIES, f"{len(entries)} > {ctx.max_entries}")
    senders = [e.sender for e in entries]
    if any(a >= b for a, b in pairwise(senders)):
        return CertificateCheck(Dispute.NOT_CANONICAL, "senders not strictly increasing")
    for e in entries:
        if e.sender in ctx.equivocators:
            return CertificateCheck(Dispute.EQUIVOCATOR, e.sender.hex()[:16])
        seen = ctx.seen.get(e.contribution_digest)
        if seen is None:
            return CertificateCheck(Dispute.UNKNOWN_CONTRIBUTION, e.contribution_digest.hex()[:16])
        if seen.sender != e.sender:
            return CertificateCheck(Dispute.SENDER_MISMATCH, e.contribution_digest.hex()[:16])
        if e.contribution_digest in ctx.rejected:
            return CertificateCheck(Dispute.REJECTED_CONTRIBUTION, e.sender.hex()[:16])
    total = sum(e.weight_ppb for e in entries)
    if entries and (total != WEIGHT_ONE_PPB or any(e.weight_ppb == 0 for e in entries)):
        return CertificateCheck(Dispute.WEIGHTS, f"weights sum to {total} ppb")
    shares = mode_shares([ctx.seen[e.contribution_digest] for e in entries], ctx.weight_mode)
    if entries and shares is not None:
        expected = allocate_ppb(shares)
        given = [e.weight_ppb for e in entries]
        if given != expected:
            return CertificateCheck(Dispute.WEIGHT_MODE,
                                    f"{ctx.weight_mode.value} weights are {expected}, got {given}")
    return APPROVED


@dataclass(frozen=True)
class CertificateReview:
    """The verdict on an envelope; ``signed`` is None when it did not even open."""

    check: CertificateCheck
    signed: Signed[RoundCertificate] | None


def review_certificate(raw: bytes, ctx: ReviewContext, apply: ApplyFn) -> CertificateReview:
    """Open (signature, network, type) and check a certificate envelope. Never raises on bad
    bytes; a certificate that does not open cannot be endorsed or disputed by digest."""
    try:
        signed = open_envelope(raw, network_id=ctx.network_id, expect=RoundCertificate)
    except MessageRejected as exc:
        return CertificateReview(CertificateCheck(Dispute.BAD_ENVELOPE, str(exc)), None)
    return CertificateReview(check_certificate(signed.message, ctx, apply), signed)


def endorse(
    cert: RoundCertificate, check: CertificateCheck, key: NodeKey, sequence: int
) -> CertificateEndorsement:
    """This validator's co-signature (approve) or dispute of ``cert``; seal it to publish."""
    return CertificateEndorsement(
        network_id=cert.network_id,
        round_index=cert.round_index,
        validator=key.public.raw,
        sequence=sequence,
        certificate_digest=message_digest(cert),
        approve=check.approved,
        reason=check.reason,
    )


__all__ = [
    "APPROVED", "ApplyFn", "Candidate", "CertificateCheck", "CertificateReview", "Dispute",
    "ReviewContext", "WeightMode", "WeightedContribution", "allocate_ppb",
    "build_certificate", "certificate_entries", "check_certificate", "check_entries", "endorse",
    "entry_weight", "mode_shares", "review_certificate", "select_top",
]
