"""Finality: a round's certificate counts only once a stake majority of validators approves it.

A leader's certificate is a proposal. Validators review it and publish signed
``CertificateEndorsement`` votes (approve or dispute, naming the certificate by digest). The
certificate is *final* when validators holding more than ``FINALITY_THRESHOLD`` of all stake
approve it; the leader's own signature on the certificate counts as its approval, so a network
with one validator (or a leader holding a stake majority) finalizes at once. A validator that
both approved and disputed the same certificate counts for nothing.

Nodes apply only final rounds, and their on-disk log keeps the proof next to each bundle:

    finalized := frames(bundle, endorsement envelope, ...)     (at most one per validator)

A leader holding a stake majority alone (a one-validator network) logs its rounds with no
endorsements: its signature is the proof.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from protocol.domain_types import Digest, PublicKey, Wei
from protocol.errors import ConsensusError, MessageRejected, RejectReason
from protocol.leader import StakeTable, canonical_stakes
from protocol.membership import MembershipTimeline, StakesAt, stakes_at
from protocol.messages import CertificateEndorsement, RoundCertificate
from protocol.roundlog import RoundBundle, decode_frames, encode_frames, open_bundle
from protocol.signing import Signed, message_digest, open_envelope

FINALITY_THRESHOLD = Fraction(1, 2)
"""Approving stake must exceed this share of all stake (2/3 gives BFT-style safety)."""

MAX_ROUNDS_AHEAD = 16
"""Endorsements are kept for rounds floor .. floor + MAX_ROUNDS_AHEAD - 1 only."""

MAX_CERTIFICATES_PER_VALIDATOR = 4
"""Distinct certificates one validator may vote on in one round (fallback leaders make more
than one legitimate); bounds what a single validator can make others store."""

Stakes = Sequence[tuple[PublicKey, Wei]]
"""(Ed25519 public key, stake) of every validator."""

SignedEndorsement = Signed[CertificateEndorsement]


def approving_stake(
    cert: RoundCertificate,
    endorsements: Iterable[CertificateEndorsement],
    stakes: StakeTable,
) -> tuple[int, int]:
    """(stake approving ``cert``, total stake). The leader counts as approving; a validator
    that both approved and disputed the same certificate does not count."""
    table = dict(canonical_stakes(stakes))
    digest = message_digest(cert)
    approvals: set[PublicKey] = {cert.leader}
    disputes: set[PublicKey] = set()
    for e in endorsements:
        same = (e.certificate_digest == digest and e.round_index == cert.round_index
                and e.network_id == cert.network_id)
        if same:
            (approvals if e.approve else disputes).add(e.validator)
    counted = (approvals - disputes) & table.keys()
    return sum(table[v] for v in counted), sum(table.values())


def is_final(
    cert: RoundCertificate,
    endorsements: Iterable[CertificateEndorsement],
    stakes: StakeTable,
    threshold: Fraction = FINALITY_THRESHOLD,
) -> bool:
    """True when validators holding more than ``threshold`` of all stake approve ``cert``.

    ``endorsements`` must come out of ``open_envelope`` (signatures checked by the caller).
    """
    if not 0 <= threshold < 1:
        raise ConsensusError(f"threshold must lie in [0, 1), got {threshold}")
    approving, total = approving_stake(cert, endorsements, stakes)
    return total > 0 and approving > threshold * total


@dataclass
class _Votes:
    """The votes on one certificate, at most one approval and one dispute per validator."""

    approvals: dict[PublicKey, SignedEndorsement] = field(default_factory=dict)
    disputes: dict[PublicKey, SignedEndorsement] = field(default_factory=dict)

    def all(self) -> list[SignedEndorsement]:
        both = [*self.approvals.values(), *self.disputes.values()]
        return sorted(both, key=lambda s: (s.message.validator, s.message.approve))

    def involves(self, validator: PublicKey) -> bool:
        return validator in self.approvals or validator in self.disputes


class EndorsementBook:
    """Verified endorsements per (round, certificate digest); bounded memory.

    Per round each validator may vote on at most MAX_CERTIFICATES_PER_VALIDATOR certificates,
    once each way, and only rounds in [floor, floor + MAX_ROUNDS_AHEAD) are kept, so the book
    holds at most 2 * MAX_CERTIFICATES_PER_VALIDATOR * validators * MAX_ROUNDS_AHEAD votes.
    """

    def __init__(
        self,
        network_id: str,
        validators: Stakes | MembershipTimeline | StakesAt,
        max_envelope_bytes: int,
        threshold: Fraction = FINALITY_THRESHOLD,
    ) -> None:
        if not 0 <= threshold < 1:
            raise ConsensusError(f"threshold must lie in [0, 1), got {threshold}")
        self.network_id = network_id
        if not isinstance(validators, MembershipTimeline) and not callable(validators):
            canonical_stakes(validators)  # a fixed table is checked at once
        self._stakes_at = stakes_at(validators)
        self.max_envelope_bytes = max_envelope_bytes
        self.threshold = threshold
        self._rounds: dict[int, dict[Digest, _Votes]] = {}
        self._floor = 0

    def add_raw(self, raw: bytes) -> SignedEndorsement:
        """Verify and keep a gossiped endorsement; MessageRejected (with a reason) otherwise."""
        signed = open_envelope(raw, network_id=self.network_id,
                               max_size=self.max_envelope_bytes, expect=CertificateEndorsement)
        self.add(signed)
        return signed

    def add(self, signed: SignedEndorsement) -> None:
        """Keep an endorsement whose signature is already checked (e.g. this node's own)."""
        e = signed.message
        if e.network_id != self.network_id:
            raise MessageRejected(RejectReason.WRONG_NETWORK, "endorsement of another network")
        if not self._floor <= e.round_index < self._floor + MAX_ROUNDS_AHEAD:
            raise MessageRejected(RejectReason.WRONG_ROUND, f"round {e.round_index} not kept")
        if e.validator not in dict(self.stakes(e.round_index)):
            raise MessageRejected(RejectReason.UNKNOWN_SENDER, "endorsement by a non-validator")
        by_digest = self._rounds.get(e.round_index, {})
        votes = by_digest.get(e.certificate_digest)
        if votes is None:
            voted = sum(1 for v in by_digest.values() if v.involves(e.validator))
            if voted >= MAX_CERTIFICATES_PER_VALIDATOR:
                raise MessageRejected(RejectReason.OUT_OF_BOUNDS,
                                      f"validator voted on {voted} certificates this round")
            votes = _Votes()
        side = votes.approvals if e.approve else votes.disputes
        if e.validator in side:
            raise MessageRejected(RejectReason.DUPLICATE, "validator already voted this way")
        side[e.validator] = signed
        by_digest[e.certificate_digest] = votes
        self._rounds[e.round_index] = by_digest

    def stakes(self, round_index: int) -> list[tuple[PublicKey, Wei]]:
        """The canonical stake table that counts for `round_index`."""
        return canonical_stakes(self._stakes_at(round_index))

    def endorsements(
        self, round_index: int, certificate_digest: Digest
    ) -> list[SignedEndorsement]:
        """Every kept vote on a certificate (approvals and disputes), by validator key."""
        votes = self._rounds.get(round_index, {}).get(certificate_digest)
        return [] if votes is None else votes.all()

    def approving(self, certificate: RoundCertificate) -> tuple[int, int]:
        """(stake approving ``certificate``, total stake), the leader included."""
        digest = message_digest(certificate)
        votes = self.endorsements(certificate.round_index, digest)
        return approving_stake(certificate, (s.message for s in votes),
                               self.stakes(certificate.round_index))

    def is_final(self, certificate: RoundCertificate) -> bool:
        """Whether the kept votes make ``certificate`` final."""
        approving, total = self.approving(certificate)
        return total > 0 and approving > self.threshold * total

    def proof(self, certificate: RoundCertificate) -> tuple[SignedEndorsement, ...]:
        """The approvals that count for ``certificate`` (what a log entry carries)."""
        digest = message_digest(certificate)
        votes = self._rounds.get(certificate.round_index, {}).get(digest)
        if votes is None:
            return ()
        counted = sorted(set(votes.approvals) - set(votes.disputes))
        return tuple(votes.approvals[v] for v in counted)

    def forget_before(self, round_index: int) -> None:
        """Drop rounds below ``round_index`` and refuse them from now on."""
        self._floor = max(self._floor, round_index)
        for r in [r for r in self._rounds if r < self._floor]:
            del self._rounds[r]


@dataclass(frozen=True)
class FinalizedRound:
    """A bundle and the endorsements that made it final: one entry of the on-disk log."""

    bundle: RoundBundle
    endorsements: tuple[SignedEndorsement, ...]

    @property
    def round_index(self) -> int:
        return self.bundle.round_index

    def encode(self) -> bytes:
        """frames(bundle, endorsement envelopes...): the log entry and catch-up answer form."""
        return encode_frames([self.bundle.encode(), *(s.envelope for s in self.endorsements)])


def open_finalized(
    raw: bytes,
    *,
    network_id: str,
    validators: Stakes | MembershipTimeline | StakesAt,
    max_envelope_bytes: int,
    threshold: Fraction = FINALITY_THRESHOLD,
) -> FinalizedRound:
    """Parse and verify a log entry; MessageRejected unless the bundle opens AND its
    endorsements (each by a distinct validator, for this certificate) prove finality.

    `validators` is the stake table, or a per-round lookup asked for the entry's round."""
    lookup = stakes_at(validators)
    frames = decode_frames(raw)
    if not frames:
        raise MessageRejected(RejectReason.MALFORMED, "empty log entry")
    bundle_raw, proof_frames = frames[0], frames[1:]
    bundle = open_bundle(bundle_raw, network_id=network_id, validators=lookup,
                         max_envelope_bytes=max_envelope_bytes)
    try:
        table = canonical_stakes(lookup(bundle.round_index))
    except ConsensusError as exc:
        raise MessageRejected(RejectReason.UNKNOWN_SENDER, f"bad stake table: {exc}") from exc
    if len(proof_frames) > len(table):
        raise MessageRejected(RejectReason.OUT_OF_BOUNDS,
                              f"{len(proof_frames)} endorsements > {len(table)} validators")
    proof = _open_proof(proof_frames, bundle, network_id, dict(table), max_envelope_bytes)
    try:
        final = is_final(bundle.certificate.message, (s.message for s in proof), table,
                         threshold)
    except ConsensusError as exc:
        raise MessageRejected(RejectReason.OUT_OF_BOUNDS, str(exc)) from exc
    if not final:
        approving, total = approving_stake(bundle.certificate.message,
                                           (s.message for s in proof), table)
        raise MessageRejected(RejectReason.NOT_FINAL,
                              f"round {bundle.round_index}: {approving} of {total} stake approve")
    return FinalizedRound(bundle, proof)


def _open_proof(
    frames: Sequence[bytes],
    bundle: RoundBundle,
    network_id: str,
    stake_of: dict[PublicKey, Wei],
    max_envelope_bytes: int,
) -> tuple[SignedEndorsement, ...]:
    out: list[SignedEndorsement] = []
    seen: set[PublicKey] = set()
    for frame in frames:
        signed = open_envelope(frame, network_id=network_id, max_size=max_envelope_bytes,
                               expect=CertificateEndorsement)
        e = signed.message
        if e.validator not in stake_of:
            raise MessageRejected(RejectReason.UNKNOWN_SENDER, "endorsement by a non-validator")
        if (e.certificate_digest != bundle.certificate.digest
                or e.round_index != bundle.round_index):
            raise MessageRejected(RejectReason.MALFORMED, "endorsement of another certificate")
        if e.validator in seen:
            raise MessageRejected(RejectReason.DUPLICATE, "two endorsements by one validator")
        seen.add(e.validator)
        out.append(signed)
    return tuple(out)
