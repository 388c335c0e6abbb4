"""Turning a certifier's decision into the round's signed bundle, and receipts into bytes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from fractions import Fraction

from protocol.domain_types import ModelHash, PublicKey
from protocol.equivocation import Equivocation
from protocol.identity import NodeKey
from protocol.messages import WEIGHT_ONE_PPB, CertEntry, Contribution, RoundCertificate
from protocol.roundlog import CertifiedEntry, RoundBundle
from protocol.signing import Signed, message_digest, open_envelope, seal
from validator.certificate import WeightMode, allocate_ppb, mode_shares


def time_sequence() -> int:
    """A message sequence that keeps increasing across restarts (microseconds since 1970)."""
    return time.time_ns() // 1000


def to_ppb(weight: float) -> int:
    """A certificate weight in parts per billion, clamped to [0, 1]."""
    return max(0, min(WEIGHT_ONE_PPB, round(weight * WEIGHT_ONE_PPB)))


def chosen_entries(
    decision: Sequence[CertifiedEntry], received: Sequence[Signed[Contribution]]
) -> list[tuple[Signed[Contribution], int]]:
    """The certifier's picks as (envelope, weight ppb), sorted by sender (the apply order).

    The weights are rescaled to sum to exactly WEIGHT_ONE_PPB (followers refuse any other
    sum); weights that already do are kept as they are.
    """
    by_digest = {s.digest: s for s in received}
    picked: dict[PublicKey, tuple[Signed[Contribution], int]] = {}
    for contribution, weight in decision:
        signed = by_digest.get(message_digest(contribution))
        if signed is not None and to_ppb(weight) > 0:
            picked.setdefault(contribution.sender, (signed, to_ppb(weight)))
    ordered = [picked[sender] for sender in sorted(picked)]
    exact = allocate_ppb([Fraction(ppb) for _, ppb in ordered])
    return [(signed, ppb) for (signed, _), ppb in zip(ordered, exact, strict=True) if ppb > 0]


def without_senders(
    chosen: Sequence[tuple[Signed[Contribution], int]],
    senders: frozenset[PublicKey],
    mode: WeightMode,
) -> list[tuple[Signed[Contribution], int]]:
    """`chosen` less the entries of `senders` (proven equivocators), the weights of the rest
    given again by `mode` (exactly what reviewers recompute) or rescaled in proportion."""
    kept = [(signed, ppb) for signed, ppb in chosen if signed.message.sender not in senders]
    if len(kept) == len(chosen) or not kept:
        return kept
    shares = mode_shares([signed.message for signed, _ in kept], mode)
    weights = allocate_ppb(shares if shares is not None else [Fraction(p) for _, p in kept])
    return [(signed, ppb) for (signed, _), ppb in zip(kept, weights, strict=True) if ppb > 0]


def applied_entries(chosen: Sequence[tuple[Signed[Contribution], int]]) -> list[CertifiedEntry]:
    """What every replica applies for `chosen`: the weights the certificate can carry."""
    return [(signed.message, ppb / WEIGHT_ONE_PPB) for signed, ppb in chosen]


def build_bundle(
    key: NodeKey,
    *,
    network_id: str,
    round_index: int,
    prev_model_hash: ModelHash,
    new_model_hash: ModelHash,
    chosen: Sequence[tuple[Signed[Contribution], int]],
    evidence: Sequence[Equivocation] = (),
) -> RoundBundle:
    """Sign the certificate of `chosen` and pack it with the contributions it names and the
    equivocation proofs it carries (`evidence`)."""
    certificate = RoundCertificate(
        network_id=network_id,
        round_index=round_index,
        leader=key.public.raw,
        sequence=time_sequence(),
        prev_model_hash=prev_model_hash,
        entries=tuple(
            CertEntry(signed.message.sender, signed.digest, ppb) for signed, ppb in chosen
        ),
        new_model_hash=new_model_hash,
    )
    signed_cert = open_envelope(
        seal(certificate, key), network_id=network_id, expect=RoundCertificate
    )
    return RoundBundle(signed_cert, tuple(signed for signed, _ in chosen), tuple(evidence))
