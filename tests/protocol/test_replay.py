"""Replay protection: round window, duplicates, sequences, bounded memory."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import MessageRejected, RejectReason
from protocol.identity import NodeKey
from protocol.messages import Message
from protocol.replay import ReplayGuard
from protocol.signing import Signed, open_envelope, seal
from tests.protocol.message_strategies import (
    KEYS,
    NETWORK,
    key_for,
    sample_contribution,
    sample_endorsement,
)


def _signed(msg: Message) -> Signed[Message]:
    return open_envelope(seal(msg, key_for(msg.author)), network_id=NETWORK)


def _contribution(
    round_index: int = 5, sequence: int = 1, key: NodeKey = KEYS[0]
) -> Signed[Message]:
    return _signed(sample_contribution(round_index=round_index, sequence=sequence, key=key))


def _reason(guard: ReplayGuard, signed: Signed[Message], current_round: int = 5) -> RejectReason:
    with pytest.raises(MessageRejected) as info:
        guard.check(signed, current_round=current_round)
    return info.value.reason


def test_accepts_fresh_and_rejects_exact_duplicate() -> None:
    guard = ReplayGuard()
    signed = _contribution()
    guard.check(signed, current_round=5)
    assert _reason(guard, signed) is RejectReason.DUPLICATE
    # the same bytes re-opened give the same digest: still a duplicate
    assert _reason(guard, open_envelope(signed.envelope, network_id=NETWORK)) is (
        RejectReason.DUPLICATE
    )


def test_round_window() -> None:
    guard = ReplayGuard(past_rounds=1, future_rounds=1)
    for round_index in (3, 7, 100):
        assert _reason(guard, _contribution(round_index=round_index)) is RejectReason.WRONG_ROUND
    for sequence, round_index in enumerate((4, 5, 6), start=1):
        guard.check(_contribution(round_index=round_index, sequence=sequence), current_round=5)
    strict = ReplayGuard(past_rounds=0, future_rounds=0)
    assert _reason(strict, _contribution(round_index=4)) is RejectReason.WRONG_ROUND


def test_stale_sequence() -> None:
    guard = ReplayGuard()
    guard.check(_contribution(sequence=10), current_round=5)
    assert _reason(guard, _contribution(sequence=9)) is RejectReason.STALE_SEQUENCE
    guard.check(_contribution(sequence=11), current_round=5)
    assert _reason(guard, _contribution(sequence=3)) is RejectReason.STALE_SEQUENCE


def test_reused_sequence_with_other_content_is_replayed() -> None:
    guard = ReplayGuard()
    guard.check(_contribution(sequence=10), current_round=5)
    other = _signed(dataclasses.replace(sample_contribution(sequence=10), compute_ms=1))
    assert _reason(guard, other) is RejectReason.REPLAYED


def test_sequences_are_per_signer_and_per_type() -> None:
    guard = ReplayGuard()
    guard.check(_contribution(sequence=10, key=KEYS[0]), current_round=5)
    guard.check(_contribution(sequence=1, key=KEYS[1]), current_round=5)
    guard.check(_signed(sample_endorsement(sequence=1, key=KEYS[0])), current_round=5)
    assert guard.num_senders == 3


def test_reorder_window_accepts_late_unseen_sequences() -> None:
    guard = ReplayGuard(reorder_window=4)
    guard.check(_contribution(sequence=10), current_round=5)
    guard.check(_contribution(sequence=8), current_round=5)  # arrived late, within the window
    assert _reason(guard, _contribution(sequence=8)) is RejectReason.DUPLICATE
    assert _reason(guard, _contribution(sequence=5)) is RejectReason.STALE_SEQUENCE
    guard.check(_contribution(sequence=6), current_round=5)


def test_wrong_network_never_reaches_the_guard() -> None:
    sealed = seal(sample_contribution(), KEYS[0])
    with pytest.raises(MessageRejected) as info:
        open_envelope(sealed, network_id="mainnet")
    assert info.value.reason is RejectReason.WRONG_NETWORK


def test_memory_is_bounded() -> None:
    guard = ReplayGuard(max_digests=50, max_senders=3, history=4, future_rounds=10**9)
    keys = [NodeKey.from_bytes(bytes([i + 10]) * 32) for i in range(6)]
    sealed = {}
    for sequence in range(1, 41):
        for key in keys:
            msg = sample_endorsement(round_index=5, sequence=sequence, key=key)
            sealed[(key, sequence)] = seal(msg, key)
    for raw in sealed.values():
        signed = open_envelope(raw, network_id=NETWORK)
        guard.check(signed, current_round=5)
        assert len(guard) <= 50 and guard.num_senders <= 3


def test_old_rounds_are_forgotten_as_the_round_advances() -> None:
    guard = ReplayGuard(past_rounds=1)
    for sequence in range(1, 6):
        guard.check(_contribution(round_index=5, sequence=sequence), current_round=5)
    assert len(guard) == 5
    guard.check(_contribution(round_index=7, sequence=100), current_round=7)
    assert len(guard) == 1


def test_invalid_configuration() -> None:
    with pytest.raises(ValueError):
        ReplayGuard(past_rounds=-1)
    with pytest.raises(ValueError):
        ReplayGuard(max_digests=0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 12)), max_size=30))
def test_strict_mode_accepts_strictly_increasing_sequences(events: list[tuple[int, int]]) -> None:
    guard = ReplayGuard()
    accepted: dict[int, list[int]] = {}
    for key_index, sequence in events:
        try:
            guard.check(_contribution(sequence=sequence, key=KEYS[key_index]), current_round=5)
        except MessageRejected as exc:
            assert exc.reason in {RejectReason.DUPLICATE, RejectReason.STALE_SEQUENCE}
            continue
        accepted.setdefault(key_index, []).append(sequence)
    for sequences in accepted.values():
        assert sequences == sorted(set(sequences))
