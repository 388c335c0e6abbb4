"""Peer gate, bundle framing and verification, durable log files."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.storage.logstore import RoundLogStore, write_atomic
from protocol.errors import MessageRejected, RejectReason
from protocol.identity import NodeKey
from protocol.leader import LEADER_ATTEMPTS, elected_leaders, leader_for, select_leader
from protocol.messages import WEIGHT_ONE_PPB, CertEntry, Contribution, RoundCertificate
from protocol.randomness import round_beacon
from protocol.roundlog import decode_frames, encode_frames, open_bundle
from protocol.signing import Signed, open_envelope, seal
from runtime.peergate import BANNED, OVERSIZED, RATE_LIMITED, GatePolicy, PeerGate
from validator.service.certify import build_bundle, chosen_entries

NET = "services-test"


def test_gate_refuses_oversized_and_flooding_then_bans() -> None:
    gate = PeerGate(GatePolicy(max_message_bytes=100, rate_per_s=10, burst=5, max_invalid=8,
                               ban_s=60))
    assert gate.admit("p", 101, 0.0) == OVERSIZED
    results = [gate.admit("p", 10, 0.0) for _ in range(20)]
    assert results[:5] == [None] * 5 and RATE_LIMITED in results
    assert gate.is_banned("p", 1.0)
    assert gate.admit("p", 10, 30.0) == BANNED
    assert gate.admit("other", 10, 30.0) is None  # bans are per peer
    assert gate.admit("p", 10, 61.0) is None  # and expire
    assert gate.refused_by("p")[OVERSIZED] == 1 and gate.bans == 1


def test_frames_round_trip_and_reject_truncation() -> None:
    parts = [b"", b"abc", bytes(1000)]
    raw = encode_frames(parts)
    assert decode_frames(raw) == parts
    for cut in (1, 5, len(raw) - 1):
        with pytest.raises(MessageRejected):
            decode_frames(raw[:cut])
    with pytest.raises(MessageRejected):
        decode_frames(raw + b"x")


def test_bundle_must_come_from_a_validator() -> None:
    leader = NodeKey.from_bytes(bytes(range(32)))
    bundle = build_bundle(leader, network_id=NET, round_index=3, prev_model_hash=bytes(32),
                          new_model_hash=b"\x01" * 32, chosen=[])
    raw = bundle.encode()
    opened = open_bundle(raw, network_id=NET, validators=[(leader.public.raw, 1)])
    assert opened.round_index == 3 and opened.new_model_hash == b"\x01" * 32
    with pytest.raises(MessageRejected) as info:
        open_bundle(raw, network_id=NET, validators=[(NodeKey.generate().public.raw, 1)])
    assert info.value.reason is RejectReason.UNKNOWN_SENDER
    with pytest.raises(MessageRejected):
        open_bundle(raw, network_id="another-net", validators=[(leader.public.raw, 1)])


# more validators than leader attempts, so some round has a validator no attempt elects
VALIDATOR_KEYS = [NodeKey.from_bytes(bytes([i + 1]) * 32) for i in range(10)]
STAKES = [(k.public.raw, 1) for k in VALIDATOR_KEYS]
PREV = b"\x07" * 32


def _round_with_one_outsider() -> tuple[int, NodeKey, NodeKey]:
    """A round, its attempt-0 leader, and a registered validator no attempt elects."""
    for r in range(100):
        leaders = elected_leaders(round_beacon(NET, r), STAKES)
        outsiders = [k for k in VALIDATOR_KEYS if k.public.raw not in leaders]
        if outsiders:
            first = select_leader(round_beacon(NET, r), STAKES, 0)
            leader = next(k for k in VALIDATOR_KEYS if k.public.raw == first)
            return r, leader, outsiders[0]
    raise AssertionError("every round elects every validator")


def _contributions(round_index: int, count: int) -> list[Signed[Contribution]]:
    out = []
    for i in range(count):
        miner = NodeKey.from_bytes(bytes([100 + i]) * 32)
        message = Contribution(
            network_id=NET, round_index=round_index, sender=miner.public.raw, sequence=1,
            base_model_hash=PREV, codec="zo", direction="gaussian", rank=1, block_counts=(),
            scale=1.0, codes=b"\x01\x02", compute_ms=1,
        )
        out.append(open_envelope(seal(message, miner), network_id=NET, expect=Contribution))
    return out


def test_only_the_elected_leader_may_certify_a_round() -> None:
    r, leader, outsider = _round_with_one_outsider()
    chosen = [(c, w) for c, w in zip(_contributions(r, 2), (400_000_000, 600_000_000),
                                      strict=True)]
    honest = build_bundle(leader, network_id=NET, round_index=r, prev_model_hash=PREV,
                          new_model_hash=b"\x01" * 32, chosen=chosen)
    opened = open_bundle(honest.encode(), network_id=NET, validators=STAKES)
    assert opened.certificate.message.leader == leader.public.raw
    assert [w for _, w in opened.entries()] == [0.4, 0.6]
    forged = build_bundle(outsider, network_id=NET, round_index=r, prev_model_hash=PREV,
                          new_model_hash=b"\x01" * 32, chosen=chosen)
    with pytest.raises(MessageRejected) as info:
        open_bundle(forged.encode(), network_id=NET, validators=STAKES)
    assert info.value.reason is RejectReason.UNKNOWN_SENDER
    assert "elected leader" in info.value.detail


def test_fallback_leaders_are_accepted_up_to_the_attempt_limit() -> None:
    r = 5
    beacon = round_beacon(NET, r)
    for attempt in range(LEADER_ATTEMPTS):
        key = next(k for k in VALIDATOR_KEYS
                   if k.public.raw == select_leader(beacon, STAKES, attempt))
        bundle = build_bundle(key, network_id=NET, round_index=r, prev_model_hash=PREV,
                              new_model_hash=b"\x01" * 32, chosen=[])
        assert open_bundle(bundle.encode(), network_id=NET, validators=STAKES).round_index == r
        clock_round = r + attempt
        assert leader_for(NET, r, clock_round, STAKES) == key.public.raw


@pytest.mark.parametrize("weights", [(400_000_000, 599_999_999), (500_000_000, 500_000_001)])
def test_certificate_weights_must_sum_to_one(weights: tuple[int, int]) -> None:
    r, leader, _ = _round_with_one_outsider()
    chosen = list(zip(_contributions(r, 2), weights, strict=True))
    certificate = RoundCertificate(
        network_id=NET, round_index=r, leader=leader.public.raw, sequence=1,
        prev_model_hash=PREV,
        entries=tuple(CertEntry(c.message.sender, c.digest, w) for c, w in chosen),
        new_model_hash=b"\x01" * 32,
    )
    raw = encode_frames([seal(certificate, leader), *(c.envelope for c, _ in chosen)])
    assert sum(weights) != WEIGHT_ONE_PPB
    with pytest.raises(MessageRejected) as info:
        open_bundle(raw, network_id=NET, validators=STAKES)
    assert info.value.reason is RejectReason.OUT_OF_BOUNDS
    assert "weights sum" in info.value.detail


def test_the_leader_rescales_its_weights_to_exactly_one() -> None:
    received = _contributions(4, 3)
    decision = [(c.message, 1 / 3) for c in received]
    chosen = chosen_entries(decision, received)
    assert sum(ppb for _, ppb in chosen) == WEIGHT_ONE_PPB
    assert sorted(ppb for _, ppb in chosen) == [333_333_333, 333_333_333, 333_333_334]


def test_log_store_writes_atomically_and_serves_consecutive_rounds(tmp_path: Path) -> None:
    store = RoundLogStore(tmp_path / "log")
    for r in (0, 1, 2, 4):
        store.put(r, b"round %d" % r)
    (tmp_path / "log" / ".round-000000000003.bundle.x.tmp").write_bytes(b"torn")
    assert store.rounds() == [0, 1, 2, 4]
    assert store.consecutive_from(1, 10, 1 << 20) == [b"round 1", b"round 2"]
    assert store.consecutive_from(0, 10, 20) == [b"round 0"]
    RoundLogStore(tmp_path / "log")  # reopening sweeps the torn temporary file
    assert not list((tmp_path / "log").glob(".*.tmp"))
    write_atomic(tmp_path / "f", b"new")
    assert (tmp_path / "f").read_bytes() == b"new"


def test_leaders_rotate_in_proportion_to_stake() -> None:
    validators = [(b"a" * 32, 1), (b"b" * 32, 3)]
    picks = [leader_for(NET, r, r, validators) for r in range(4000)]
    share = picks.count(b"b" * 32) / len(picks)
    assert 0.7 < share < 0.8
    assert picks == [leader_for(NET, r, r, list(reversed(validators))) for r in range(4000)]
