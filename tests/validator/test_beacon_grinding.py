"""A round's leader cannot grind the next round's randomness through its choice of certificate.

The freedom, measured here with the real build, review and apply: a leader may certify any
subset of up to G of the valid contributions it has seen (an honest reviewer checks that each
included one is known and acceptable, not that none was left out, since views of a round
differ), and in ``PROPORTIONAL`` mode any positive weights summing to 1e9. Every variant passes
review and gives its own next model. While the beacon was keyed by the previous certified model
hash, each variant also gave its own next beacon, hence its own next leader, miner seeds and
data assignment, so the leader could sign whichever suited it: on main at cf63405 the test of
the next round sees 17 distinct beacons from the 17 variants below, and the leader could make any
of the four validators the next leader (kept here with the old rule written out). The beacon now
depends on the network and the round only: all variants lead to the same next round.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections.abc import Sequence

import torch

from protocol.assignment import assign_samples
from protocol.domain_types import ModelHash
from protocol.identity import NodeKey
from protocol.leader import leader_for, leader_sequence, select_leader
from protocol.messages import Contribution, RoundCertificate
from protocol.perturb import DirectionSpec
from protocol.randomness import contribution_seeds, round_beacon
from protocol.signing import message_digest
from training.replica import ApplyRule, Replica
from validator.certificate import (
    Candidate,
    ReviewContext,
    WeightedContribution,
    WeightMode,
    build_certificate,
    check_certificate,
)

NET = "grind-test"
ROUND = 5
LIMIT = 4
VALIDATORS = [NodeKey.from_bytes(bytes([60 + i]) * 32) for i in range(4)]
STAKES = [(v.public.raw, s) for v, s in zip(VALIDATORS, (10, 40, 30, 20), strict=True)]
MINERS = [NodeKey.from_bytes(bytes([20 + i]) * 32) for i in range(4)]
RULE = ApplyRule(NET, 0.5, DirectionSpec())
NAMED = [("w", torch.linspace(-1.0, 1.0, 24).reshape(6, 4)), ("b", torch.zeros(4))]
PREV = Replica(NAMED, RULE, ROUND).model_hash
LEADER = next(v for v in VALIDATORS
              if v.public.raw == select_leader(round_beacon(NET, ROUND), STAKES))


def _apply(entries: Sequence[WeightedContribution]) -> ModelHash:
    return Replica.detached_copy(NAMED, RULE, ROUND).apply_round(entries)


def _candidate(index: int) -> Candidate:
    c = Contribution(
        network_id=NET, round_index=ROUND, sender=MINERS[index].public.raw, sequence=1,
        base_model_hash=PREV, codec="zo", direction="gaussian", rank=1, block_counts=(),
        scale=0.25, codes=bytes([127, 3 + index, 0x80 | (3 + index), 0] * 2), compute_ms=1,
    )
    return Candidate(c, message_digest(c), 0.1 * (index + 1))


CANDIDATES = [_candidate(i) for i in range(len(MINERS))]


def _review(cert: RoundCertificate, mode: WeightMode) -> bool:
    ctx = ReviewContext(network_id=NET, round_index=ROUND, certified_hash=PREV, stakes=STAKES,
                        max_entries=LIMIT, seen={c.digest: c.contribution for c in CANDIDATES},
                        weight_mode=mode)
    return check_certificate(cert, ctx, _apply).approved


def _variants() -> list[tuple[RoundCertificate, WeightMode]]:
    """Certificates the round's leader can sign that an honest reviewer approves."""
    out = []
    for size in range(len(CANDIDATES) + 1):
        for subset in itertools.combinations(CANDIDATES, size):
            cert, _ = build_certificate(
                leader=LEADER, network_id=NET, round_index=ROUND, sequence=1,
                prev_model_hash=PREV, candidates=subset, limit=LIMIT, apply=_apply,
                mode=WeightMode.EQUAL)
            out.append((cert, WeightMode.EQUAL))
    # Proportional mode: the leader's own scores set the weights; only their sum is checked.
    skewed = [Candidate(c.contribution, c.digest, 1.0 if i == 0 else 0.01)
              for i, c in enumerate(CANDIDATES)]
    cert, _ = build_certificate(
        leader=LEADER, network_id=NET, round_index=ROUND, sequence=1, prev_model_hash=PREV,
        candidates=skewed, limit=LIMIT, apply=_apply, mode=WeightMode.PROPORTIONAL)
    out.append((cert, WeightMode.PROPORTIONAL))
    return out


def _next_round(cert: RoundCertificate) -> tuple[object, ...]:
    """Everything random a node derives for the round after ``cert``, after applying it."""
    by_digest = {c.digest: c.contribution for c in CANDIDATES}
    replica = Replica.detached_copy(NAMED, RULE, ROUND)
    replica.apply_round([(by_digest[e.contribution_digest], e.weight_ppb / 1e9)
                         for e in cert.entries], expected_hash=cert.new_model_hash)
    r = replica.round_index
    beacon = round_beacon(NET, r)
    return (
        beacon,
        tuple(leader_sequence(beacon, STAKES, len(STAKES))),
        leader_for(NET, r, r, STAKES),
        tuple(tuple(contribution_seeds(NET, beacon, m.public.raw, r, 4)) for m in MINERS),
        tuple(tuple(assign_samples(beacon, 1000, i, 8)) for i in range(len(MINERS))),
    )


def test_the_leader_has_many_approved_certificates_with_distinct_models() -> None:
    variants = _variants()
    assert len(variants) == 17
    assert all(_review(cert, mode) for cert, mode in variants)
    assert len({cert.new_model_hash for cert, _ in variants}) == 17


def _model_keyed_beacon(round_index: int, prev_model_hash: bytes) -> bytes:
    """The earlier rule, written out: BLAKE2b keyed by the previous certified model hash."""
    data = b"".join(struct.pack("<Q", len(p)) + p
                    for p in (NET.encode(), struct.pack("<Q", round_index)))
    return hashlib.blake2b(data, digest_size=32, key=prev_model_hash,
                           person=b"ss:beacon").digest()


def test_under_a_model_keyed_beacon_the_variants_would_be_a_grinding_menu() -> None:
    # What the fix removes: each approved variant gave its own next beacon, and the leader
    # could pick among several next leaders (all four validators here).
    beacons = {_model_keyed_beacon(ROUND + 1, cert.new_model_hash) for cert, _ in _variants()}
    assert len(beacons) == 17
    leaders = {select_leader(b, STAKES) for b in beacons}
    assert len(leaders) == len(VALIDATORS)


def test_certificate_variants_all_lead_to_the_same_next_round() -> None:
    outcomes = {_next_round(cert) for cert, _ in _variants()}
    assert len(outcomes) == 1


def test_abstaining_for_a_fallback_leader_changes_nothing_either() -> None:
    # A leader that dislikes the next round cannot hand the round to a fallback to change it.
    fallback = next(v for v in VALIDATORS
                    if v.public.raw == select_leader(round_beacon(NET, ROUND), STAKES, 1))
    mine, _ = build_certificate(
        leader=LEADER, network_id=NET, round_index=ROUND, sequence=1, prev_model_hash=PREV,
        candidates=CANDIDATES, limit=LIMIT, apply=_apply)
    theirs, _ = build_certificate(
        leader=fallback, network_id=NET, round_index=ROUND, sequence=1, prev_model_hash=PREV,
        candidates=CANDIDATES[:2], limit=LIMIT, apply=_apply)
    assert fallback is not LEADER
    assert _next_round(mine) == _next_round(theirs)
