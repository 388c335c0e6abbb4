"""Issue 15 (3): where the equivocation rule acts in a validator: the pool's receipt check, the
bundle's evidence, the reviewer's verdict, the leader's weights and the books."""

from __future__ import annotations

import hashlib
from fractions import Fraction

import pytest

from protocol.domain_types import ModelHash, Wei
from protocol.equivocation import Equivocation, prove_equivocation
from protocol.errors import MessageRejected
from protocol.identity import NodeKey
from protocol.leader import select_leader
from protocol.messages import CertEntry, Contribution, RoundCertificate
from protocol.randomness import round_beacon
from protocol.roundlog import RoundBundle, open_bundle
from protocol.signing import Signed, open_envelope, seal
from runtime.peergate import GatePolicy, PeerGate
from validator.certificate import (
    Dispute,
    ReviewContext,
    WeightMode,
    allocate_ppb,
    check_entries,
)
from validator.service.certify import without_senders
from validator.service.ledger import Ledger
from validator.service.pool import ContributionPool

NET = "equivocation-rules"
PREV = ModelHash(b"\x07" * 32)
MAX = 1 << 16


def _key(label: str) -> NodeKey:
    return NodeKey.from_bytes(hashlib.sha256(label.encode()).digest())


CHEAT, HONEST, LEADER = _key("cheat"), _key("honest"), _key("leader")
MINERS = [CHEAT.public.raw, HONEST.public.raw]
STAKES = [(LEADER.public.raw, Wei(1))]


def _raw(key: NodeKey, *, sequence: int = 1, round_index: int = 0, scalars: int = 2) -> bytes:
    return seal(Contribution(
        network_id=NET, round_index=round_index, sender=key.public.raw, sequence=sequence,
        base_model_hash=PREV, codec="zo", direction="gaussian", rank=1, block_counts=(),
        scale=1.0, codes=bytes(range(1, scalars + 1)), compute_ms=1,
    ), key)


def _signed(raw: bytes) -> Signed[Contribution]:
    return open_envelope(raw, network_id=NET, expect=Contribution)


def test_the_pool_proves_a_second_version_blames_no_relay_and_never_hands_it_out() -> None:
    gate = PeerGate(GatePolicy(max_invalid=1))
    proofs: list[Equivocation] = []
    pool = ContributionPool(NET, MINERS, MAX, gate, on_equivocation=proofs.append)
    relay = "relay-peer"
    assert pool.receive(_raw(CHEAT, sequence=5), relay, current_round=0, now=0.0)
    assert pool.receive(_raw(HONEST), relay, current_round=0, now=0.0)
    # the second version has a LOWER sequence: the replay guard would call it stale; it is
    # proof all the same, whatever order the versions arrive in
    for sequence in (4, 6):  # and a third version: refused, counted, no second proof
        assert not pool.receive(_raw(CHEAT, sequence=sequence), relay, current_round=0,
                                now=0.0)
    assert pool.refused["equivocation"] == 2
    assert len(proofs) == 1 and proofs[0].sender == CHEAT.public.raw
    assert not gate.is_banned(relay, 0.0) and not gate.refused_by(relay)
    assert [s.message.sender for s in pool.take(0, PREV)] == [HONEST.public.raw]
    # a version seen only in a leader's bundle proves it too
    other = _pool_with(_raw(HONEST))
    assert other.learn(_signed(_raw(HONEST, sequence=2))) is not None


def _pool_with(*raws: bytes) -> ContributionPool:
    pool = ContributionPool(NET, MINERS, MAX, PeerGate(GatePolicy()))
    for raw in raws:
        assert pool.receive(raw, "peer", current_round=0, now=0.0)
    return pool


def _bundle(entries: list[Signed[Contribution]], evidence: tuple = ()) -> RoundBundle:
    ppb = allocate_ppb([Fraction(1)] * len(entries))
    cert = RoundCertificate(
        network_id=NET, round_index=0, leader=LEADER.public.raw, sequence=1,
        prev_model_hash=PREV, new_model_hash=ModelHash(b"\x09" * 32),
        entries=tuple(CertEntry(s.message.sender, s.digest, w)
                      for s, w in zip(entries, ppb, strict=True)))
    signed = open_envelope(seal(cert, LEADER), network_id=NET, expect=RoundCertificate)
    return RoundBundle(signed, tuple(entries), evidence)


def test_a_bundle_carries_proofs_and_may_not_include_whom_they_convict() -> None:
    assert select_leader(round_beacon(NET, 0), STAKES, 0) == LEADER.public.raw
    proof = prove_equivocation(_signed(_raw(CHEAT, sequence=1)), _signed(_raw(CHEAT, sequence=2)))
    honest = _signed(_raw(HONEST))
    bundle = _bundle([honest], (proof,))
    opened = open_bundle(bundle.encode(), network_id=NET, validators=STAKES,
                         max_envelope_bytes=MAX)
    assert opened.evidence == (proof,) and opened.contributions == (honest,)
    plain = _bundle([honest])  # without evidence: the bytes every earlier node wrote
    assert open_bundle(plain.encode(), network_id=NET, validators=STAKES).evidence == ()
    convicted = _bundle([proof.first, honest], (proof,))
    with pytest.raises(MessageRejected):
        open_bundle(convicted.encode(), network_id=NET, validators=STAKES,
                    max_envelope_bytes=MAX)
    forged = prove_equivocation(_signed(_raw(CHEAT, sequence=1)),
                                _signed(_raw(CHEAT, sequence=2)))
    raw = bytearray(_bundle([honest], (forged,)).encode())
    raw[-1] ^= 1  # the second envelope's signature
    with pytest.raises(MessageRejected):
        open_bundle(bytes(raw), network_id=NET, validators=STAKES, max_envelope_bytes=MAX)


def test_a_reviewer_disputes_a_proven_equivocator_and_accepts_the_carried_rest() -> None:
    cheat_a, honest = _signed(_raw(CHEAT, sequence=1)), _signed(_raw(HONEST))
    cert = _bundle(sorted([cheat_a, honest], key=lambda s: s.message.sender)).certificate.message
    ctx = ReviewContext(network_id=NET, round_index=0, certified_hash=PREV, stakes=STAKES,
                        max_entries=8, seen={s.digest: s.message for s in (cheat_a, honest)},
                        weight_mode=WeightMode.EQUAL)
    assert check_entries(cert, ctx).approved
    proven = ReviewContext(**{**ctx.__dict__, "equivocators": {CHEAT.public.raw}})
    assert check_entries(cert, proven).dispute is Dispute.EQUIVOCATOR


def test_a_leader_that_drops_an_equivocator_gives_the_weights_reviewers_expect() -> None:
    chosen = [(_signed(_raw(k, scalars=n)), 0) for k, n in ((CHEAT, 3), (HONEST, 5),
                                                             (_key("third"), 7))]
    chosen = sorted(chosen, key=lambda c: c[0].message.sender)
    ppb = allocate_ppb([Fraction(c[0].message.scalars) for c in chosen])
    chosen = [(s, w) for (s, _), w in zip(chosen, ppb, strict=True)]
    kept = without_senders(chosen, frozenset({CHEAT.public.raw}), WeightMode.SCALARS)
    rest = [s for s, _ in chosen if s.message.sender != CHEAT.public.raw]
    assert [s for s, _ in kept] == rest
    assert [w for _, w in kept] == allocate_ppb([Fraction(s.message.scalars) for s in rest])
    assert without_senders(chosen, frozenset(), WeightMode.SCALARS) == chosen


def test_a_forfeited_miner_earns_nothing_more_that_epoch() -> None:
    ledger = Ledger()
    ledger.add_scores(0, 0, {"cheat": 2.0, "honest": 1.0})
    ledger.forfeit(0, "cheat")
    ledger.add_scores(0, 1, {"cheat": 5.0, "honest": 1.0})
    assert ledger.epochs[0].scores == {"cheat": 0.0, "honest": 2.0}
    ledger.add_scores(1, 2, {"cheat": 1.0})  # a new epoch: the ban (pipeline) decides there
    assert ledger.epochs[1].scores == {"cheat": 1.0}
