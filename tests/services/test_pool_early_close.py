"""When a validator's pool may close a round before the work deadline (early close)."""

from __future__ import annotations

from protocol.identity import NodeKey
from protocol.messages import Contribution
from protocol.signing import seal
from runtime.peergate import GatePolicy, PeerGate
from validator.service.pool import ACTIVE_ROUNDS, ContributionPool

NET = "pool-net"
PREV = b"\x07" * 32
KEYS = [NodeKey.from_bytes(bytes([60 + i]) * 32) for i in range(3)]
MINERS = [k.public.raw for k in KEYS]


def _raw(key: NodeKey, round_index: int) -> bytes:
    message = Contribution(
        network_id=NET, round_index=round_index, sender=key.public.raw, sequence=round_index + 1,
        base_model_hash=PREV, codec="zo", direction="gaussian", rank=1, block_counts=(),
        scale=1.0, codes=b"\x01\x02", compute_ms=1,
    )
    return seal(message, key)


def _pool() -> ContributionPool:
    return ContributionPool(NET, MINERS, 1 << 16, PeerGate(GatePolicy()))


def _send(pool: ContributionPool, keys: list[NodeKey], round_index: int) -> None:
    for key in keys:
        assert pool.receive(_raw(key, round_index), key.peer_id, current_round=round_index,
                            now=float(round_index))


def test_with_no_history_every_registered_miner_is_waited_for() -> None:
    pool = _pool()
    _send(pool, KEYS[:2], 0)
    assert pool.expected(0) == frozenset(MINERS)
    assert not pool.complete(0)  # the first contribution alone never closes a round
    _send(pool, KEYS[2:], 0)
    assert pool.complete(0)


def test_a_miner_silent_for_the_active_window_is_no_longer_waited_for() -> None:
    pool = _pool()
    _send(pool, KEYS, 0)
    pool.take(0, PREV)
    for r in range(1, ACTIVE_ROUNDS + 1):  # the third miner goes silent
        _send(pool, KEYS[:2], r)
        assert not pool.complete(r), r  # heard from it recently: wait for the deadline
        pool.take(r, PREV)
    r = ACTIVE_ROUNDS + 1
    _send(pool, KEYS[:2], r)
    assert pool.expected(r) == frozenset(MINERS[:2])
    assert pool.complete(r)
    pool.take(r, PREV)
    # it comes back: heard again, so the next round waits for it again
    _send(pool, KEYS, r + 1)
    pool.take(r + 1, PREV)
    _send(pool, KEYS[:2], r + 2)
    assert MINERS[2] in pool.expected(r + 2) and not pool.complete(r + 2)
    assert len(pool.heard) <= ACTIVE_ROUNDS + 2  # bounded: the window, this round, the next
