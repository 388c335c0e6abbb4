"""Replay protection, one layer at a time.

The guard's layers overlap: an exact duplicate is caught both by the digest memory and by the
sender's sequence memory, so a test that only sends duplicates cannot tell whether either layer
works. Each test here takes the other layers out of play:

* digest memory alone: the sender is evicted first (``max_senders=1`` and another sender in
  between), which is exactly when this layer is the only one left;
* sequence memory alone: every message has new content (a new digest), or the digest memory is
  saturated (``max_digests=1``);
* sender eviction: new content, and the answer to an old sequence tells whether the sender is
  still remembered (STALE_SEQUENCE) or was forgotten (accepted as a newcomer).
"""

from __future__ import annotations

import dataclasses

import pytest

from protocol.errors import MessageRejected, RejectReason
from protocol.identity import NodeKey
from protocol.messages import Message
from protocol.replay import ReplayGuard
from protocol.signing import Signed, open_envelope, seal
from tests.protocol.message_strategies import KEYS, NETWORK, key_for, sample_contribution

A, B, C = KEYS[0], KEYS[1], KEYS[2]


def msg(key: NodeKey, sequence: int, round_index: int = 5, content: int = 0) -> Signed[Message]:
    """A verified contribution; ``content`` changes its bytes (and digest) but not its header."""
    m = sample_contribution(round_index=round_index, sequence=sequence, key=key)
    m = dataclasses.replace(m, compute_ms=1000 + content)
    return open_envelope(seal(m, key_for(m.author)), network_id=NETWORK)


def reason(guard: ReplayGuard, signed: Signed[Message], current_round: int = 5) -> RejectReason:
    with pytest.raises(MessageRejected) as info:
        guard.check(signed, current_round=current_round)
    return info.value.reason


def accept(guard: ReplayGuard, *messages: Signed[Message], current_round: int = 5) -> None:
    for signed in messages:
        guard.check(signed, current_round=current_round)


# -- round window ---------------------------------------------------------------------------


def test_round_window_edges() -> None:
    guard = ReplayGuard(past_rounds=2, future_rounds=3)
    accept(guard, msg(A, 1, round_index=3), msg(B, 1, round_index=8))  # 5 - 2 and 5 + 3
    assert reason(guard, msg(C, 1, round_index=2)) is RejectReason.WRONG_ROUND
    assert reason(guard, msg(C, 1, round_index=9)) is RejectReason.WRONG_ROUND
    zero = ReplayGuard(past_rounds=0, future_rounds=0)
    accept(zero, msg(A, 1, round_index=5))
    assert reason(zero, msg(B, 1, round_index=4)) is RejectReason.WRONG_ROUND
    assert reason(zero, msg(B, 1, round_index=6)) is RejectReason.WRONG_ROUND
    accept(ReplayGuard(past_rounds=1), msg(A, 1, round_index=0), current_round=0)


def test_a_message_outside_the_window_leaves_no_trace() -> None:
    guard = ReplayGuard()
    assert reason(guard, msg(A, 7, round_index=9)) is RejectReason.WRONG_ROUND
    assert (len(guard), guard.num_senders, guard.num_sequences) == (0, 0, 0)
    accept(guard, msg(A, 3))  # sequence 7 was not consumed


# -- digest memory alone --------------------------------------------------------------------


def test_digest_memory_catches_a_duplicate_once_its_sender_is_forgotten() -> None:
    guard = ReplayGuard(max_senders=1)
    first = msg(A, 10)
    accept(guard, first, msg(B, 1))  # B's state evicts A's
    assert guard.num_senders == 1
    assert reason(guard, first) is RejectReason.DUPLICATE
    accept(guard, msg(A, 9))  # A is a newcomer again: the sequence layer really is out of play


def test_digest_memory_evicts_the_oldest_first() -> None:
    guard = ReplayGuard(max_senders=1, max_digests=2)
    a, b, c = msg(A, 1), msg(B, 1), msg(C, 1)
    accept(guard, a, b, c)
    assert len(guard) == 2
    assert reason(guard, b) is RejectReason.DUPLICATE
    assert reason(guard, c) is RejectReason.DUPLICATE
    accept(guard, a)  # the oldest digest (and its sender) was forgotten


def test_digest_capacity_reached_exactly_evicts_nothing() -> None:
    guard = ReplayGuard(max_senders=1, max_digests=3)
    a, b, c = msg(A, 1), msg(B, 1), msg(C, 1)
    accept(guard, a, b, c)
    assert len(guard) == 3
    assert reason(guard, a) is RejectReason.DUPLICATE


def test_digests_leave_with_their_round_and_not_before() -> None:
    guard = ReplayGuard(max_senders=1, past_rounds=1)
    old = msg(A, 1, round_index=5)
    accept(guard, old, msg(B, 1, round_index=5), current_round=5)
    accept(guard, msg(C, 1, round_index=6), current_round=6)
    assert len(guard) == 3  # round 5 is still inside [6 - 1, 6 + 1]
    assert reason(guard, old, current_round=6) is RejectReason.DUPLICATE
    accept(guard, msg(B, 2, round_index=7), current_round=7)
    assert len(guard) == 2  # round 5 left the window: its digests are dropped
    assert reason(guard, old, current_round=7) is RejectReason.WRONG_ROUND


# -- sequence memory alone ------------------------------------------------------------------


def test_sequence_memory_catches_a_duplicate_whose_digest_was_evicted() -> None:
    guard = ReplayGuard(max_digests=1)
    first = msg(A, 10)
    accept(guard, first, msg(A, 11))
    assert len(guard) == 1
    assert reason(guard, first) is RejectReason.DUPLICATE  # same digest under sequence 10
    assert reason(guard, msg(A, 10, content=1)) is RejectReason.REPLAYED  # other content


def test_strict_sequence_edges() -> None:
    guard = ReplayGuard()
    accept(guard, msg(A, 10))
    assert reason(guard, msg(A, 10, content=1)) is RejectReason.REPLAYED
    assert reason(guard, msg(A, 9)) is RejectReason.STALE_SEQUENCE
    accept(guard, msg(A, 11))  # highest + 1
    accept(guard, msg(A, 2**64 - 1))
    assert reason(guard, msg(A, 12)) is RejectReason.STALE_SEQUENCE


def test_a_newcomer_starts_at_any_sequence() -> None:
    guard = ReplayGuard()
    accept(guard, msg(A, 0), msg(B, 2**64 - 1), msg(C, 77))
    assert guard.num_senders == 3


def test_reorder_window_edges() -> None:
    guard = ReplayGuard(reorder_window=4)
    accept(guard, msg(A, 10), msg(A, 6))  # highest - window: still accepted
    assert reason(guard, msg(A, 5)) is RejectReason.STALE_SEQUENCE
    assert reason(guard, msg(A, 6)) is RejectReason.DUPLICATE
    assert reason(guard, msg(A, 6, content=1)) is RejectReason.REPLAYED
    accept(guard, msg(A, 12))
    assert reason(guard, msg(A, 7)) is RejectReason.STALE_SEQUENCE  # 12 - 4 = 8 is the lowest
    accept(guard, msg(A, 8), msg(A, 11))


def test_a_reorder_window_of_one() -> None:
    guard = ReplayGuard(reorder_window=1)
    accept(guard, msg(A, 10), msg(A, 9))
    assert reason(guard, msg(A, 8)) is RejectReason.STALE_SEQUENCE
    assert reason(guard, msg(A, 10, content=1)) is RejectReason.REPLAYED


def test_history_is_pruned_to_the_latest_sequences() -> None:
    guard = ReplayGuard(history=4)
    for sequence in range(1, 9):
        accept(guard, msg(A, sequence))
    assert guard.num_sequences == 8  # 2 x history reached exactly: nothing pruned yet
    accept(guard, msg(A, 9))
    assert guard.num_sequences == 4  # sequences 6..9 are kept
    assert reason(guard, msg(A, 6, content=1)) is RejectReason.REPLAYED  # remembered
    assert reason(guard, msg(A, 5, content=1)) is RejectReason.STALE_SEQUENCE  # pruned
    for sequence in range(10, 100):
        accept(guard, msg(A, sequence))
        assert guard.num_sequences <= 8


def test_pruning_keeps_the_reorder_window() -> None:
    guard = ReplayGuard(reorder_window=4, history=2)  # history is raised to window + 1
    for sequence in range(1, 12):
        accept(guard, msg(A, sequence))
    assert guard.num_sequences == 5  # 11 > 2 x 5 entries: 7..11 are kept
    assert reason(guard, msg(A, 7, content=1)) is RejectReason.REPLAYED
    assert reason(guard, msg(A, 6, content=1)) is RejectReason.STALE_SEQUENCE


def test_a_refused_message_is_not_remembered() -> None:
    guard = ReplayGuard()
    accept(guard, msg(A, 10))
    replayed = msg(A, 10, content=1)
    assert reason(guard, replayed) is RejectReason.REPLAYED
    assert reason(guard, replayed) is RejectReason.REPLAYED  # not a duplicate: never accepted
    assert (len(guard), guard.num_sequences) == (1, 1)


# -- sender eviction ------------------------------------------------------------------------


def test_the_least_recently_active_sender_is_evicted() -> None:
    guard = ReplayGuard(max_senders=2)
    accept(guard, msg(A, 10), msg(B, 10), msg(A, 11), msg(C, 10))  # A active again before C
    assert guard.num_senders == 2
    assert reason(guard, msg(A, 5)) is RejectReason.STALE_SEQUENCE  # A is remembered
    assert reason(guard, msg(C, 5)) is RejectReason.STALE_SEQUENCE  # so is the newest
    accept(guard, msg(B, 5))  # B was forgotten: a newcomer


def test_sender_capacity_reached_exactly_evicts_nothing() -> None:
    guard = ReplayGuard(max_senders=2)
    accept(guard, msg(A, 10), msg(B, 10))
    assert guard.num_senders == 2
    assert reason(guard, msg(A, 5)) is RejectReason.STALE_SEQUENCE
    assert reason(guard, msg(B, 5)) is RejectReason.STALE_SEQUENCE


def test_defaults() -> None:
    # one round either side, strict sequences, 64 sequences per sender, 64 Ki digests, 16 Ki
    # senders (the module docstring's sizes)
    guard = ReplayGuard()
    assert (guard.past_rounds, guard.future_rounds, guard.reorder_window, guard.history,
            guard.max_digests, guard.max_senders) == (1, 1, 0, 64, 65_536, 16_384)


@pytest.mark.parametrize("changes", [
    {"past_rounds": -1}, {"future_rounds": -1}, {"reorder_window": -1},
    {"history": 0}, {"max_digests": 0}, {"max_senders": 0},
])
def test_invalid_configuration(changes: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        ReplayGuard(**changes)


def test_smallest_valid_configuration() -> None:
    guard = ReplayGuard(past_rounds=0, future_rounds=0, reorder_window=0, history=1,
                        max_digests=1, max_senders=1)
    accept(guard, msg(A, 1), msg(A, 2))
    assert (len(guard), guard.num_senders, guard.num_sequences) == (1, 1, 2)
