"""The certified log: one bundle per round, how it travels, and how it is checked.

A round bundle is the leader's signed certificate followed by the signed contributions it
names, in the certificate's entry order. It is self-contained: a node that holds the model of
round r and the bundle of round r can compute the model of round r + 1 and compare its hash
with the certificate's. Gossip carries bundles as they are certified; the same bytes are the
entries of each node's on-disk log and the answers to catch-up requests, so the whole history
is replayable from any checkpoint.

    bundle   := frames(certificate envelope, contribution envelope, ... [, evidence])
    evidence := frames(equivocation proof, ...)   (protocol.equivocation; only when it has any)
    frames   := count:u32 | (length:u32 | bytes)*
    log req  := from_round:u64 | max_rounds:u32
    log resp := frames(bundle, ...)          (consecutive rounds from from_round, maybe none)
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from protocol.domain_types import ModelHash, PublicKey, Wei
from protocol.encoding import MAX_MESSAGE_BYTES
from protocol.equivocation import Equivocation, carried_proofs, encode_proofs
from protocol.errors import ConsensusError, MessageRejected, RejectReason
from protocol.frames import decode_frames as decode_frames
from protocol.frames import encode_frames as encode_frames
from protocol.leader import elected_leaders
from protocol.membership import Stakes, StakesAt, stakes_at
from protocol.messages import WEIGHT_ONE_PPB, Contribution, RoundCertificate
from protocol.randomness import round_beacon
from protocol.signing import Signed, open_envelope

TOPIC_CONTRIBUTIONS = "contributions"
TOPIC_BUNDLES = "bundles"
TOPIC_ENDORSEMENTS = "endorsements"

_LOG_REQUEST = struct.Struct(">QI")

CertifiedEntry = tuple[Contribution, float]


@dataclass(frozen=True)
class RoundBundle:
    """A verified certificate and the verified contributions it includes."""

    certificate: Signed[RoundCertificate]
    contributions: tuple[Signed[Contribution], ...]
    evidence: tuple[Equivocation, ...] = ()
    """Proofs of equivocation the leader holds for recent rounds (protocol.equivocation):
    none names a sender the certificate includes for the proof's round."""

    @property
    def round_index(self) -> int:
        return self.certificate.message.round_index

    @property
    def prev_model_hash(self) -> ModelHash:
        return self.certificate.message.prev_model_hash

    @property
    def new_model_hash(self) -> ModelHash:
        return self.certificate.message.new_model_hash

    def entries(self) -> list[CertifiedEntry]:
        """(contribution, weight) pairs as every replica applies them (weight = ppb / 1e9)."""
        return [
            (signed.message, entry.weight_ppb / WEIGHT_ONE_PPB)
            for signed, entry in zip(
                self.contributions, self.certificate.message.entries, strict=True
            )
        ]

    def encode(self) -> bytes:
        """The bundle's wire and log form."""
        parts = [self.certificate.envelope, *(c.envelope for c in self.contributions)]
        if self.evidence:
            parts.append(encode_proofs(self.evidence))
        return encode_frames(parts)


def open_bundle(
    raw: bytes,
    *,
    network_id: str,
    validators: Stakes | StakesAt,
    max_envelope_bytes: int = MAX_MESSAGE_BYTES,
) -> RoundBundle:
    """Parse and verify a bundle; raises only MessageRejected.

    `validators` is the stake table ((Ed25519 public key, stake) pairs), or a lookup of the
    table in force for a round (protocol.membership), asked for the certificate's round. The
    certificate must be
    signed by a leader the round's beacon elects (protocol.leader, any accepted attempt), its
    weights must sum to exactly WEIGHT_ONE_PPB unless it has no entries, and there must be
    exactly one contribution per entry, in entry order, whose envelope digest and sender are the
    entry's.
    """
    frames = decode_frames(raw, max_frames=2 + 512)
    if not frames:
        raise MessageRejected(RejectReason.MALFORMED, "empty bundle")
    cert = open_envelope(
        frames[0], network_id=network_id, max_size=max_envelope_bytes, expect=RoundCertificate
    )
    table = stakes_at(validators)(cert.message.round_index)
    if cert.message.leader not in {key for key, _ in table}:
        raise MessageRejected(RejectReason.UNKNOWN_SENDER, "certificate from a non-validator")
    _check_leader(network_id, cert.message, table)
    entries = cert.message.entries
    total = sum(entry.weight_ppb for entry in entries)
    if entries and total != WEIGHT_ONE_PPB:
        raise MessageRejected(RejectReason.OUT_OF_BOUNDS, f"weights sum to {total} ppb")
    evidence: tuple[Equivocation, ...] = ()
    if len(frames) - 2 == len(entries):  # a last frame carries the leader's proofs
        evidence = carried_proofs(frames[-1], network_id=network_id,
                                  max_envelope_bytes=max_envelope_bytes)
        frames = frames[:-1]
        included = {(cert.message.round_index, e.sender) for e in entries}
        if any((p.round_index, p.sender) in included for p in evidence):
            raise MessageRejected(RejectReason.MALFORMED,
                                  "certificate includes a sender its own evidence convicts")
    if len(frames) - 1 != len(entries):
        raise MessageRejected(RejectReason.MALFORMED, "bundle does not match its certificate")
    contributions = []
    for frame, entry in zip(frames[1:], entries, strict=True):
        signed = open_envelope(
            frame, network_id=network_id, max_size=max_envelope_bytes, expect=Contribution
        )
        if signed.digest != entry.contribution_digest or signed.message.sender != entry.sender:
            raise MessageRejected(RejectReason.MALFORMED, "contribution is not the certified one")
        if signed.message.round_index != cert.message.round_index:
            raise MessageRejected(RejectReason.WRONG_ROUND, "contribution of another round")
        contributions.append(signed)
    return RoundBundle(cert, tuple(contributions), evidence)


def _check_leader(
    network_id: str, cert: RoundCertificate, validators: Sequence[tuple[PublicKey, Wei]]
) -> None:
    """MessageRejected(UNKNOWN_SENDER) unless the signer is one of the round's leaders."""
    beacon = round_beacon(network_id, cert.round_index)
    try:
        leaders = elected_leaders(beacon, validators)
    except ConsensusError as exc:
        raise MessageRejected(RejectReason.UNKNOWN_SENDER, f"no leader: {exc}") from exc
    if cert.leader not in leaders:
        raise MessageRejected(
            RejectReason.UNKNOWN_SENDER, "certificate not signed by the round's elected leader"
        )


def encode_log_request(from_round: int, max_rounds: int) -> bytes:
    """A catch-up request: bundles of rounds from `from_round` on, at most `max_rounds`."""
    return _LOG_REQUEST.pack(from_round, max_rounds)


def decode_log_request(raw: bytes) -> tuple[int, int]:
    """(from_round, max_rounds); MessageRejected(MALFORMED) if the size is wrong."""
    if len(raw) != _LOG_REQUEST.size:
        raise MessageRejected(RejectReason.MALFORMED, "log request has the wrong size")
    from_round, max_rounds = _LOG_REQUEST.unpack(raw)
    return int(from_round), int(max_rounds)
