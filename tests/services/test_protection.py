"""Peer gate, bundle framing and verification, durable log files."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.errors import MessageRejected, RejectReason
from protocol.identity import NodeKey
from protocol.logstore import RoundLogStore, write_atomic
from protocol.peergate import BANNED, OVERSIZED, RATE_LIMITED, GatePolicy, PeerGate
from protocol.roundlog import decode_frames, encode_frames, open_bundle
from validator.service.certify import build_bundle
from validator.service.leader import leader_for

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
    opened = open_bundle(raw, network_id=NET, validators=[leader.public.raw])
    assert opened.round_index == 3 and opened.new_model_hash == b"\x01" * 32
    with pytest.raises(MessageRejected) as info:
        open_bundle(raw, network_id=NET, validators=[NodeKey.generate().public.raw])
    assert info.value.reason is RejectReason.UNKNOWN_SENDER
    with pytest.raises(MessageRejected):
        open_bundle(raw, network_id="another-net", validators=[leader.public.raw])


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
    picks = [leader_for(r, validators) for r in range(4000)]
    share = picks.count(b"b" * 32) / len(picks)
    assert 0.7 < share < 0.8
    assert picks == [leader_for(r, list(reversed(validators))) for r in range(4000)]
