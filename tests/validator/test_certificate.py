"""Leader rotation, certificate build -> review -> endorse -> finality, and every dispute."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction

import pytest
import torch

from protocol.errors import ConsensusError
from protocol.finality import is_final
from protocol.identity import NodeKey
from protocol.leader import select_leader
from protocol.messages import (
    WEIGHT_ONE_PPB,
    CertEntry,
    CertificateEndorsement,
    Contribution,
    RoundCertificate,
)
from protocol.perturb import DirectionSpec
from protocol.randomness import round_beacon
from protocol.signing import message_digest, open_envelope, seal
from training.replica import ApplyRule, Replica
from validator.certificate import (
    ApplyFn,
    Candidate,
    Dispute,
    ReviewContext,
    WeightedContribution,
    WeightMode,
    allocate_ppb,
    build_certificate,
    check_entries,
    endorse,
    review_certificate,
    select_top,
)

NET = "cert-test"
ROUND = 12
VALIDATORS = [NodeKey.from_bytes(bytes([100 + i]) * 32) for i in range(4)]
STAKES = [(v.public.raw, s) for v, s in zip(VALIDATORS, (40, 30, 20, 10), strict=True)]
MINERS = [NodeKey.from_bytes(bytes([10 + i]) * 32) for i in range(6)]
RULE = ApplyRule(NET, 0.5, DirectionSpec())
NAMED = [("w", torch.linspace(-1.0, 1.0, 24).reshape(6, 4)), ("b", torch.zeros(4))]
PREV = Replica(NAMED, RULE, ROUND).model_hash


def applier(named: list[tuple[str, torch.Tensor]] = NAMED) -> ApplyFn:
    """The real replica apply, on a private copy of the certified tensors."""
    def apply(entries: Sequence[WeightedContribution]) -> bytes:
        return Replica.detached_copy(named, RULE, ROUND).apply_round(entries)
    return apply


def key_by_raw(raw: bytes) -> NodeKey:
    return next(v for v in VALIDATORS if v.public.raw == raw)


LEADER = key_by_raw(select_leader(round_beacon(NET, ROUND), STAKES))
OTHERS = [v for v in VALIDATORS if v is not LEADER]


def contribution(miner: NodeKey, code: int = 5) -> Contribution:
    return Contribution(
        network_id=NET, round_index=ROUND, sender=miner.public.raw, sequence=1,
        base_model_hash=PREV, codec="zo", direction="gaussian", rank=1, block_counts=(),
        scale=0.25, codes=bytes([127, code, 0x80 | code, 0] * 2), compute_ms=1,
    )


SCORES = (0.3, 0.1, 0.5, float("nan"), 0.2, 0.4)
CANDIDATES = [
    Candidate(contribution(m, 3 + i), message_digest(contribution(m, 3 + i)), score)
    for i, (m, score) in enumerate(zip(MINERS, SCORES, strict=True))
]
SEEN = {c.digest: c.contribution for c in CANDIDATES}


def review_ctx(**changes: object) -> ReviewContext:
    ctx = ReviewContext(network_id=NET, round_index=ROUND, certified_hash=PREV, stakes=STAKES,
                        max_entries=4, seen=SEEN)
    return dataclasses.replace(ctx, **changes)  # type: ignore[arg-type]


def make_cert(mode: WeightMode = WeightMode.EQUAL) -> tuple[RoundCertificate, bytes]:
    return build_certificate(leader=LEADER, network_id=NET, round_index=ROUND, sequence=7,
                             prev_model_hash=PREV, candidates=CANDIDATES, limit=4,
                             apply=applier(), mode=mode)


# --- leader --------------------------------------------------------------------------------

def test_leader_is_a_pure_function_of_beacon_and_stakes() -> None:
    beacon = round_beacon(NET, ROUND)
    assert select_leader(beacon, STAKES) == select_leader(beacon, list(reversed(STAKES)))
    assert select_leader(beacon, STAKES) == LEADER.public.raw
    fallbacks = {select_leader(beacon, STAKES, attempt) for attempt in range(20)}
    assert len(fallbacks) > 1
    assert select_leader(beacon, [*STAKES, (b"\x01" * 32, 0)]) == LEADER.public.raw


def test_leader_rotation_is_stake_proportional() -> None:
    rounds = 8000
    stakes = [(bytes([i]) * 32, s) for i, s in enumerate((1, 2, 3, 4, 0), start=1)]
    total = sum(s for _, s in stakes)
    wins = Counter(select_leader(hashlib.sha256(r.to_bytes(4, "big")).digest(), stakes)
                   for r in range(rounds))
    assert wins[bytes([5]) * 32] == 0
    for key, stake in stakes[:4]:
        p = stake / total
        sd = math.sqrt(rounds * p * (1 - p))
        assert abs(wins[key] - rounds * p) < 4.5 * sd, (stake, wins[key])


@pytest.mark.parametrize("stakes", [[], [(b"\x01" * 32, 0)], [(b"\x01" * 32, 1)] * 2,
                                    [(b"\x01" * 31, 5)], [(b"\x01" * 32, -1)]])
def test_malformed_stake_tables_are_refused(stakes: list[tuple[bytes, int]]) -> None:
    with pytest.raises(ConsensusError):
        select_leader(b"\x00" * 32, stakes)


# --- selection and weights -----------------------------------------------------------------

def test_top_g_by_score_one_per_sender_ties_by_key() -> None:
    top = select_top(CANDIDATES, 4)
    assert [c.score for c in top] == [0.5, 0.4, 0.3, 0.2]  # nan never qualifies
    tied = [dataclasses.replace(c, score=1.0) for c in CANDIDATES]
    assert [c.contribution.sender for c in select_top(tied, 3)] == sorted(
        m.public.raw for m in MINERS)[:3]
    second = dataclasses.replace(CANDIDATES[0], score=0.9, digest=b"\xff" * 32)
    top = select_top([*CANDIDATES, second], 6)
    assert len({c.contribution.sender for c in top}) == len(top) == 5
    assert top[0] is second
    negative = [dataclasses.replace(c, score=-1.0) for c in CANDIDATES[:2]]
    assert select_top(negative, 4, WeightMode.PROPORTIONAL) == []
    assert len(select_top(negative, 4, WeightMode.EQUAL)) == 2


@pytest.mark.parametrize("shares", [[1, 1, 1], [1] * 7, [3, 1], [1, 2, 3, 4, 5, 6, 7], [10**-9, 1]])
def test_weights_sum_to_exactly_one(shares: list[float]) -> None:
    weights = allocate_ppb([Fraction(s) for s in shares])
    assert sum(weights) == WEIGHT_ONE_PPB
    exact = [WEIGHT_ONE_PPB * Fraction(s) / sum(map(Fraction, shares)) for s in shares]
    assert all(abs(w - e) < 1 for w, e in zip(weights, exact, strict=True))


# --- build, review, endorse, finality --------------------------------------------------------

@pytest.mark.parametrize("mode", [WeightMode.EQUAL, WeightMode.PROPORTIONAL])
def test_certificate_sign_verify_endorse_final(mode: WeightMode) -> None:
    cert, raw = make_cert(mode)
    senders = [e.sender for e in cert.entries]
    assert senders == sorted(senders) and len(senders) == 4
    assert sum(e.weight_ppb for e in cert.entries) == WEIGHT_ONE_PPB
    assert cert.new_model_hash != PREV
    endorsements = []
    for i, validator in enumerate(OTHERS):
        review = review_certificate(raw, review_ctx(weight_mode=mode), applier())
        assert review.check.approved, review.check.reason
        assert review.signed is not None and review.signed.message == cert
        sealed = seal(endorse(cert, review.check, validator, sequence=i + 1), validator)
        opened = open_envelope(sealed, network_id=NET, expect=CertificateEndorsement)
        assert opened.message.approve and opened.message.certificate_digest == review.signed.digest
        endorsements.append(opened.message)
    assert is_final(cert, endorsements, STAKES)
    assert is_final(cert, endorsements, STAKES, Fraction(2, 3))
    assert not is_final(cert, [], STAKES)  # the leader alone holds at most 40 %


def test_finality_needs_more_than_the_threshold_of_stake() -> None:
    cert, _ = make_cert()
    stake = dict(STAKES)

    def approve(v: NodeKey, ok: bool = True) -> CertificateEndorsement:
        return CertificateEndorsement(NET, ROUND, v.public.raw, 1, message_digest(cert), ok,
                                      "" if ok else "no")

    leader_stake = stake[LEADER.public.raw]
    by_stake = sorted(OTHERS, key=lambda v: -stake[v.public.raw])
    chosen: list[CertificateEndorsement] = []
    running = leader_stake
    for v in by_stake:
        expected = running > 50
        assert is_final(cert, chosen, STAKES) is expected
        chosen.append(approve(v))
        running += stake[v.public.raw]
    assert is_final(cert, chosen, STAKES)
    # A dispute from the same validator cancels its approval; other certificates do not count.
    equivocating = [*chosen, approve(by_stake[0], ok=False)]
    other = dataclasses.replace(cert, sequence=8)
    assert not is_final(other, chosen, STAKES)
    approving = leader_stake + sum(stake[v.public.raw] for v in by_stake[1:])
    assert is_final(cert, equivocating, STAKES) is (approving > 50)


def test_exactly_half_is_not_final() -> None:
    a, b = VALIDATORS[0], VALIDATORS[1]
    stakes = [(a.public.raw, 5), (b.public.raw, 5)]
    cert = RoundCertificate(NET, ROUND, a.public.raw, 1, PREV, (), PREV)
    assert not is_final(cert, [], stakes)
    yes = CertificateEndorsement(NET, ROUND, b.public.raw, 1, message_digest(cert), True, "")
    assert is_final(cert, [yes], stakes)


# --- disputes ------------------------------------------------------------------------------

def _resealed(cert: RoundCertificate, key: NodeKey | None = None) -> bytes:
    key = key or LEADER
    return seal(dataclasses.replace(cert, leader=key.public.raw), key)


def _dispute(raw: bytes, ctx: ReviewContext | None = None) -> Dispute:
    review = review_certificate(raw, ctx or review_ctx(), applier())
    assert not review.check.approved
    if review.signed is not None:
        cert = review.signed.message
        vote = endorse(cert, review.check, OTHERS[0], 3)
        assert not vote.approve and vote.reason.startswith(review.check.dispute.value)
    return review.check.dispute


def test_wrong_leader_is_disputed() -> None:
    cert, _ = make_cert()
    assert _dispute(_resealed(cert, OTHERS[0])) is Dispute.WRONG_LEADER


def test_weights_not_summing_are_disputed() -> None:
    cert, _ = make_cert()
    short = tuple(dataclasses.replace(e, weight_ppb=e.weight_ppb - 1) for e in cert.entries)
    assert _dispute(_resealed(dataclasses.replace(cert, entries=short))) is Dispute.WEIGHTS
    zero = (*cert.entries[:-1], dataclasses.replace(cert.entries[-1], weight_ppb=0))
    moved = zero[0].weight_ppb + cert.entries[-1].weight_ppb
    first = dataclasses.replace(zero[0], weight_ppb=moved)
    assert _dispute(_resealed(dataclasses.replace(cert, entries=(first, *zero[1:])))) is \
        Dispute.WEIGHTS


def test_wrong_new_hash_is_disputed() -> None:
    cert, _ = make_cert()
    forged = dataclasses.replace(cert, new_model_hash=bytes(32))
    assert _dispute(_resealed(forged)) is Dispute.NEW_HASH
    # Re-weighting the same entries also changes the model: the hash no longer matches.
    a, b, *rest = cert.entries
    moved = (dataclasses.replace(a, weight_ppb=a.weight_ppb + 1000),
             dataclasses.replace(b, weight_ppb=b.weight_ppb - 1000), *rest)
    # (Under a mode the reviewer can recompute this is a weight dispute; under PROPORTIONAL,
    # whose scores only the leader knows, the model hash catches it.)
    reweighted = _resealed(dataclasses.replace(cert, entries=moved))
    assert _dispute(reweighted) is Dispute.WEIGHT_MODE
    assert _dispute(reweighted, review_ctx(weight_mode=WeightMode.PROPORTIONAL)) is \
        Dispute.NEW_HASH


def _forged(entries: Sequence[CertEntry]) -> bytes:
    """A leader's certificate over ``entries`` with the hash its own apply gives (honest hash)."""
    cert, _ = make_cert()
    applied = [(SEEN[e.contribution_digest], e.weight_ppb / WEIGHT_ONE_PPB) for e in entries]
    forged = dataclasses.replace(cert, entries=tuple(entries), new_model_hash=applier()(applied))
    return seal(forged, LEADER)


@pytest.mark.parametrize("mode", [WeightMode.EQUAL, WeightMode.SCALARS])
def test_leader_giving_all_weight_to_one_entry_is_disputed(mode: WeightMode) -> None:
    cert, _ = make_cert(mode)
    favourite, *others = cert.entries
    skewed = [dataclasses.replace(favourite, weight_ppb=WEIGHT_ONE_PPB - len(others)),
              *(dataclasses.replace(e, weight_ppb=1) for e in others)]
    ctx = review_ctx(weight_mode=mode)
    assert _dispute(_forged(skewed), ctx) is Dispute.WEIGHT_MODE
    alone = [dataclasses.replace(favourite, weight_ppb=WEIGHT_ONE_PPB)]
    assert review_certificate(_forged(alone), ctx, applier()).check.approved  # a fair subset


def test_scalars_mode_weights_follow_scalar_counts() -> None:
    small = dataclasses.replace(CANDIDATES[0].contribution, codes=bytes([5, 6]))
    big = CANDIDATES[1].contribution  # 8 scalars
    seen = {message_digest(small): small, message_digest(big): big}
    entries = sorted(
        [CertEntry(small.sender, message_digest(small), 200_000_000),
         CertEntry(big.sender, message_digest(big), 800_000_000)], key=lambda e: e.sender)
    cert = RoundCertificate(NET, ROUND, LEADER.public.raw, 9, PREV, tuple(entries), PREV)
    ctx = review_ctx(seen=seen, weight_mode=WeightMode.SCALARS)
    assert check_entries(cert, ctx).approved
    equal = tuple(dataclasses.replace(e, weight_ppb=500_000_000) for e in entries)
    assert check_entries(dataclasses.replace(cert, entries=equal), ctx).dispute is \
        Dispute.WEIGHT_MODE


def test_other_structural_disputes() -> None:
    cert, raw = make_cert()
    assert _dispute(raw, review_ctx(certified_hash=b"\x09" * 32)) is Dispute.PREV_HASH
    assert _dispute(raw, review_ctx(round_index=ROUND + 1)) is Dispute.WRONG_ROUND
    assert _dispute(raw, review_ctx(max_entries=3)) is Dispute.TOO_MANY_ENTRIES
    reordered = dataclasses.replace(cert, entries=tuple(reversed(cert.entries)))
    assert _dispute(_resealed(reordered)) is Dispute.NOT_CANONICAL
    missing = {d: c for d, c in SEEN.items() if d != cert.entries[0].contribution_digest}
    assert _dispute(raw, review_ctx(seen=missing)) is Dispute.UNKNOWN_CONTRIBUTION
    rejected = {cert.entries[1].contribution_digest}
    assert _dispute(raw, review_ctx(rejected=rejected)) is Dispute.REJECTED_CONTRIBUTION
    e0 = cert.entries[0]
    liar = dataclasses.replace(e0, sender=b"\x00" * 32)
    swapped = dataclasses.replace(cert, entries=(liar, *cert.entries[1:]))
    assert _dispute(_resealed(swapped)) is Dispute.SENDER_MISMATCH


def test_apply_failure_is_a_dispute_not_a_crash() -> None:
    stale = dataclasses.replace(CANDIDATES[0].contribution, base_model_hash=b"\x03" * 32)
    digest = message_digest(stale)
    entry = CertEntry(stale.sender, digest, WEIGHT_ONE_PPB)
    cert = RoundCertificate(NET, ROUND, LEADER.public.raw, 9, PREV, (entry,), PREV)
    ctx = review_ctx(seen={**SEEN, digest: stale})
    assert _dispute(seal(cert, LEADER), ctx) is Dispute.APPLY_FAILED


@pytest.mark.parametrize("raw", [b"", b"\x01" * 50, b"\x01" * 200_000])
def test_garbage_certificate_is_refused_without_raising(raw: bytes) -> None:
    assert _dispute(raw) is Dispute.BAD_ENVELOPE


def test_empty_round_certifies_the_unchanged_model() -> None:
    cert, raw = build_certificate(leader=LEADER, network_id=NET, round_index=ROUND, sequence=1,
                                  prev_model_hash=PREV, candidates=[], limit=4, apply=applier())
    assert cert.entries == () and cert.new_model_hash == PREV
    assert review_certificate(raw, review_ctx(), applier()).check.approved
