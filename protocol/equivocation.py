"""Equivocation: two distinct valid contributions signed by one miner for one round.

A miner may send one contribution per round. Two different signed messages for the same round
(they may differ in nothing but the sequence number) are a fact anyone can check from the two
envelopes alone, whoever forwarded them: both open under the network's key rules, both are
signed by the same key, both name the same round, and their digests differ. That pair is the
``Equivocation`` proof; its wire form is

    proof := frames(envelope with the smaller digest, envelope with the larger digest)

so one pair always encodes to the same bytes. The rules every validator applies:

* on receipt: keep the first contribution of each (round, sender); a second valid one with
  another digest makes a proof (``EquivocationBook.observe``), and both stay as evidence;
* exclusion: a round's certificate never includes a sender proven to have equivocated in that
  round; a leader drops it and carries the proof in its bundle, a reviewer that holds a proof
  against an included sender disputes (``validator.certificate``), so once a validator has
  seen both versions it reaches the same verdict as every other that has;
* penalty: the proven equivocator is treated as if it had failed an audit in that round
  (banned, its epoch score forfeited), by every validator that receives the proof.

A forged proof (different signers, the same bytes twice, different rounds or networks, a bad
signature) is refused with ``MessageRejected``; nothing here raises anything else on bad bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from protocol.domain_types import PublicKey
from protocol.errors import MessageRejected, RejectReason
from protocol.frames import decode_frames, encode_frames
from protocol.messages import Contribution
from protocol.signing import Signed, open_envelope

EQUIVOCATION_ROUNDS = 4
"""Rounds an `EquivocationBook` remembers (the replica's round and a few before it)."""

MAX_PROOFS_PER_BUNDLE = 8
"""Proofs a leader's bundle may carry (each one bans a registered miner, so few are real)."""

SignedContribution = Signed[Contribution]


@dataclass(frozen=True)
class Equivocation:
    """Proof that `sender` signed two different contributions for `round_index`."""

    first: SignedContribution
    second: SignedContribution
    """The two messages, ordered by envelope digest."""

    @property
    def sender(self) -> PublicKey:
        return self.first.message.sender

    @property
    def round_index(self) -> int:
        return self.first.message.round_index

    def encode(self) -> bytes:
        """The proof's wire form (see the module docstring)."""
        return encode_frames([self.first.envelope, self.second.envelope])


def prove_equivocation(a: SignedContribution, b: SignedContribution) -> Equivocation:
    """The proof that `a` and `b` (both opened by `open_envelope`) make; MessageRejected
    unless they are two different contributions signed by one sender for one round."""
    ma, mb = a.message, b.message
    if a.digest == b.digest:
        raise MessageRejected(RejectReason.DUPLICATE, "the same message twice proves nothing")
    if a.signer.raw != ma.sender or b.signer.raw != mb.sender:
        raise MessageRejected(RejectReason.BAD_SIGNATURE, "a contribution not signed by its sender")
    if ma.sender != mb.sender:
        raise MessageRejected(RejectReason.UNKNOWN_SENDER, "two different signers")
    if ma.network_id != mb.network_id:
        raise MessageRejected(RejectReason.WRONG_NETWORK, "two different networks")
    if ma.round_index != mb.round_index:
        raise MessageRejected(RejectReason.WRONG_ROUND,
                              f"rounds {ma.round_index} and {mb.round_index} differ")
    first, second = sorted((a, b), key=lambda s: s.digest)
    return Equivocation(first, second)


def open_equivocation(raw: bytes, *, network_id: str, max_envelope_bytes: int) -> Equivocation:
    """Parse and check a proof's wire form; raises only MessageRejected (a forged proof too)."""
    frames = decode_frames(raw, max_frames=2)
    if len(frames) != 2:
        raise MessageRejected(RejectReason.MALFORMED, "a proof holds exactly two envelopes")
    a, b = (open_envelope(f, network_id=network_id, max_size=max_envelope_bytes,
                          expect=Contribution) for f in frames)
    proof = prove_equivocation(a, b)
    if proof.first.envelope != frames[0]:
        raise MessageRejected(RejectReason.MALFORMED, "proof envelopes not in digest order")
    return proof


class EquivocationBook:
    """The first contribution of each (round, sender) and the proofs found, for the last
    `EQUIVOCATION_ROUNDS` rounds; at most one message and one proof per sender and round, so
    memory is bounded by the registered miners the caller admits."""

    def __init__(self, rounds: int = EQUIVOCATION_ROUNDS) -> None:
        self.rounds = rounds
        self._first: dict[int, dict[PublicKey, SignedContribution]] = {}
        self._proofs: dict[int, dict[PublicKey, Equivocation]] = {}
        self._floor = 0

    def observe(self, signed: SignedContribution) -> Equivocation | None:
        """Remember `signed` as its sender's first message of its round, or return the proof
        it makes with the one kept (None: first or the same message again, or too old)."""
        r, sender = signed.message.round_index, signed.message.sender
        if r < self._floor:
            return None
        kept = self._first.setdefault(r, {}).setdefault(sender, signed)
        if kept.digest == signed.digest:
            return None
        proof = prove_equivocation(kept, signed)
        return proof if self.add(proof) else None

    def add(self, proof: Equivocation) -> bool:
        """Keep a proof (checked by `prove_equivocation` or `open_equivocation`); False when
        one against the same sender and round is already kept, or the round is forgotten."""
        if proof.round_index < self._floor:
            return False
        kept = self._proofs.setdefault(proof.round_index, {})
        if proof.sender in kept:
            return False
        kept[proof.sender] = proof
        return True

    def equivocators(self, round_index: int) -> frozenset[PublicKey]:
        """The senders proven to have equivocated in `round_index`."""
        return frozenset(self._proofs.get(round_index, {}))

    def proofs(self, rounds: Iterable[int]) -> list[Equivocation]:
        """The proofs kept for `rounds`, by round then sender."""
        return [p for r in sorted(set(rounds)) for _, p in sorted(self._proofs.get(r, {}).items())]

    def forget_before(self, round_index: int) -> None:
        """Drop rounds older than `round_index - rounds + 1` and ignore them from now on."""
        self._floor = max(self._floor, round_index - self.rounds + 1)
        for table in (self._first, self._proofs):
            for stale in [r for r in table if r < self._floor]:
                del table[stale]


def carried_proofs(
    raw: bytes, *, network_id: str, max_envelope_bytes: int
) -> tuple[Equivocation, ...]:
    """The proofs of a bundle's evidence frame: frames(proof, ...), at most
    `MAX_PROOFS_PER_BUNDLE`, each against a different (round, sender)."""
    frames = decode_frames(raw, max_frames=MAX_PROOFS_PER_BUNDLE)
    proofs = tuple(open_equivocation(f, network_id=network_id,
                                     max_envelope_bytes=max_envelope_bytes) for f in frames)
    if len({(p.round_index, p.sender) for p in proofs}) != len(proofs):
        raise MessageRejected(RejectReason.DUPLICATE, "two proofs against one sender and round")
    return proofs


def encode_proofs(proofs: Iterable[Equivocation]) -> bytes:
    """A bundle's evidence frame (inverse of `carried_proofs`)."""
    return encode_frames([p.encode() for p in proofs])
