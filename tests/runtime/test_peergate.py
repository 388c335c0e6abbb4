"""Who a refusal strikes: the peer it proves at fault, never the signer of a replayed message."""

from __future__ import annotations

from runtime.peergate import BANNED, RATE_LIMITED, GatePolicy, PeerGate

POLICY = GatePolicy(max_invalid=3, window_s=100.0, ban_s=50.0, rate_per_s=1.0, burst=3.0)


def test_bad_bytes_strike_their_publisher_not_the_relay() -> None:
    gate = PeerGate(POLICY)
    for t in range(3):
        gate.reject("relay", "bad_signature", "forged", float(t), origin="author")
    assert gate.is_banned("author", 3.0) and not gate.is_banned("relay", 3.0)
    # the banned author's messages are dropped whoever relays them; the relay's own pass
    assert gate.admit("relay", 10, 3.0, origin="author") == BANNED
    assert gate.admit("relay", 10, 3.0) is None
    assert gate.refused_by("relay")["bad_signature"] == 3


def test_a_replayable_refusal_strikes_nobody_unless_its_publisher_sent_it_itself() -> None:
    gate = PeerGate(POLICY)
    for t in range(10):
        for reason in ("wrong_round", "duplicate", "replayed", "stale_sequence"):
            gate.reject("replayer", reason, "sent again", float(t), origin="miner")
    assert not gate.is_banned("miner", 10.0) and not gate.is_banned("replayer", 10.0)
    assert gate.refused_by("replayer")["wrong_round"] == 10
    assert gate.refused_by("miner") == {}
    for t in range(3):  # sent by the publisher itself: its own choice, its own strike
        gate.reject("late", "wrong_round", "late", float(t))
    assert gate.is_banned("late", 3.0)


def test_rate_limits_fall_on_the_forwarder_and_only_a_direct_flood_is_banned() -> None:
    gate = PeerGate(POLICY)
    outcomes = [gate.admit("relay", 10, 0.0, origin="miner") for _ in range(10)]
    assert outcomes.count(RATE_LIMITED) == 7
    assert not gate.is_banned("relay", 0.0) and not gate.is_banned("miner", 0.0)
    assert gate.admit("miner", 10, 0.0) is None  # the miner's own budget is untouched
    for _ in range(10):
        gate.admit("flooder", 10, 0.0)
    assert gate.is_banned("flooder", 0.0)
