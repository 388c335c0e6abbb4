"""Issue 15, defect 2: throw-away keys must never crowd registered members out of MQTT.

Keys cost nothing and the broker authenticates nobody. Before the fix, a node tracked one
bounded table of senders and refused new ones once it was full, so a few thousand tiny signed
frames from fresh keys locked every member out (miners stuck at round 0, empty certified
rounds). Now members (the membership timeline's keys) have their own table, and strangers
share a small table and budget of their own. The attack runs twice: against the verifier with
a fake clock (fast, in-process), and through a real mosquitto broker.
"""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from adapters.transport.base import Limits, Request
from adapters.transport.mqtt import MqttConfig, MqttTransport
from adapters.transport.mqtt_wire import (
    Auth,
    FrameVerifier,
    PublishEnvelope,
    Refused,
    SequenceCounter,
    VerifierLimits,
    decode,
    seal,
)
from adapters.transport.stats import DropReason
from protocol.domain_types import Wei
from protocol.identity import NodeKey
from protocol.membership import Membership, MembershipTimeline
from tests.transport.harness import eventually, seed_for

NET = "flood-net"
TOPIC = "contributions"
MQTT_TOPIC = f"seedswarm/{NET}/t/{TOPIC}"
FLOOD = 5000
"""More fresh keys than the old shared table (4096) could hold."""


def key_of(label: str) -> NodeKey:
    return NodeKey.from_bytes(seed_for(f"mqtt-flood/{label}"))


def frame(key: NodeKey, seq: int, data: bytes = b"x", topic: str = MQTT_TOPIC) -> bytes:
    return seal(PublishEnvelope(Auth(key.public.raw, seq, key.peer_id), data), key,
                network_id=NET, topic=topic)


def throwaway_frames(count: int, seq: int) -> list[bytes]:
    """`count` tiny frames, each signed by a key of its own (what the attacker sends)."""
    return [frame(NodeKey.generate(), seq) for _ in range(count)]


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    @property
    def us(self) -> int:
        return int(self.now * 1_000_000)


def outcome(verifier: FrameVerifier, raw: bytes) -> DropReason | None:
    try:
        verifier.verify(decode(raw), MQTT_TOPIC)
    except Refused as refused:
        return refused.reason
    return None


def timeline_of(*members: NodeKey) -> MembershipTimeline:
    miners = [m.public.raw for m in members[:-1]]
    return MembershipTimeline.constant(Membership.of(miners, [(members[-1].public.raw, Wei(1))]))


# -- in-process: the verifier under a flood, fake clock ----------------------------------------


def test_fast_flood_of_fresh_keys_leaves_members_accepted_and_costs_one_small_budget() -> None:
    clock = FakeClock()
    miner, validator = key_of("miner"), key_of("validator")
    verifier = FrameVerifier(NET, clock=clock, members=timeline_of(miner, validator).knows)
    flood = throwaway_frames(FLOOD, clock.us)
    refused: dict[DropReason | None, int] = {}
    for raw in flood:  # 5000 frames in 5 seconds: the attack of the issue
        clock.now += 0.001
        reason = outcome(verifier, raw)
        refused[reason] = refused.get(reason, 0) + 1
    limits = VerifierLimits()
    examined = refused.get(None, 0)
    assert examined <= limits.stranger_burst + 5 * limits.stranger_rate_per_s + 1
    assert refused[DropReason.STRANGER_BUDGET] == FLOOD - examined
    assert DropReason.SENDER_TABLE_FULL not in refused
    assert verifier.num_strangers <= limits.max_strangers
    assert verifier.num_senders == 0  # no stranger ever sits in the members' table
    # the members still get through, each on its own window
    assert outcome(verifier, frame(miner, clock.us)) is None
    assert outcome(verifier, frame(validator, clock.us + 1)) is None
    assert outcome(verifier, frame(miner, clock.us)) is DropReason.DUPLICATE
    assert verifier.num_senders == 2


def test_a_flood_within_the_strangers_budget_never_displaces_members() -> None:
    """Even a patient attacker that stays under the budget (fresh key every frame) only
    churns the strangers' table; members' windows and frames are untouched throughout."""
    clock = FakeClock()
    limits = VerifierLimits(max_strangers=64)
    miner, validator = key_of("miner"), key_of("validator")
    verifier = FrameVerifier(NET, limits, clock=clock,
                             members=timeline_of(miner, validator).knows)
    step = 1.0 / limits.stranger_rate_per_s
    for index, raw in enumerate(throwaway_frames(1000, clock.us)):
        clock.now += step
        # the stranger frames were signed at the start: shift nothing, they stay fresh (50 s)
        assert outcome(verifier, raw) is None
        if index % 50 == 0:
            assert outcome(verifier, frame(miner, clock.us)) is None
            assert outcome(verifier, frame(validator, clock.us)) is None
    assert verifier.num_strangers == limits.max_strangers
    assert verifier.strangers_forgotten == 1000 - limits.max_strangers
    assert verifier.num_senders == 2


def test_a_flood_before_the_membership_is_known_cannot_hold_the_members_table() -> None:
    """A node learns its membership after fetching the genesis model: whatever strangers
    filled its table before then moves to the strangers' side when it does."""
    clock = FakeClock()
    limits = VerifierLimits(max_senders=100, max_strangers=32)
    verifier = FrameVerifier(NET, limits, clock=clock)  # no membership yet: all count
    for raw in throwaway_frames(limits.max_senders, clock.us):
        assert outcome(verifier, raw) is None
    member = key_of("miner")
    assert outcome(verifier, frame(member, clock.us)) is DropReason.SENDER_TABLE_FULL
    verifier.recognize(timeline_of(key_of("validator"), member).knows)
    assert verifier.num_senders == 0
    assert verifier.num_strangers == limits.max_strangers
    assert outcome(verifier, frame(member, clock.us + 1)) is None


def test_a_stranger_that_registers_keeps_its_replay_window() -> None:
    clock = FakeClock()
    joiner, validator = key_of("joiner"), key_of("validator")
    timeline = timeline_of(validator)
    verifier = FrameVerifier(NET, clock=clock, members=timeline.knows)
    first = frame(joiner, clock.us)
    assert outcome(verifier, first) is None
    assert verifier.num_strangers == 1
    timeline.set(10, Membership.of([joiner.public.raw], [(validator.public.raw, Wei(1))]))
    assert outcome(verifier, first) is DropReason.DUPLICATE  # not a fresh start
    assert (verifier.num_senders, verifier.num_strangers) == (1, 0)


def test_timeline_knows_members_of_every_kept_epoch_only() -> None:
    old, new, validator, stranger = (key_of(n) for n in ("old", "new", "v", "stranger"))
    timeline = timeline_of(old, validator)
    assert timeline.knows(old.public.raw) and timeline.knows(validator.public.raw)
    assert not timeline.knows(new.public.raw)
    timeline.set(10, Membership.of([new.public.raw], [(validator.public.raw, Wei(1))]))
    assert timeline.knows(new.public.raw) and timeline.knows(old.public.raw)
    assert not timeline.knows(stranger.public.raw)


# -- through a real mosquitto broker -----------------------------------------------------------


def member_node(port: int, key: NodeKey) -> MqttTransport:
    return MqttTransport(MqttConfig(port=port), key=key, network_id=NET, limits=Limits())


@pytest.mark.network
def test_mosquitto_flood_from_fresh_keys_does_not_lock_members_out(mosquitto_port: int) -> None:
    victim_key, miner_key = key_of("victim-validator"), key_of("miner")
    members = timeline_of(miner_key, victim_key).knows
    throwaway = [NodeKey.generate() for _ in range(FLOOD)]

    async def echo(request: Request) -> bytes:
        return request.data

    async def scenario() -> None:
        victim = member_node(mosquitto_port, victim_key)
        miner = member_node(mosquitto_port, miner_key)
        async with victim, miner:
            victim.recognize_members(members)
            miner.recognize_members(members)
            victim.serve("echo", echo)
            subscription = await victim.subscribe(TOPIC)
            received: list[tuple[str, bytes]] = []

            async def consume() -> None:  # a node drains its queue as it goes
                while True:
                    delivery = await subscription.get()
                    received.append((delivery.from_peer, delivery.data))

            consumer = asyncio.create_task(consume())
            counter = SequenceCounter()
            async with aiomqtt.Client("127.0.0.1", mosquitto_port) as attacker:
                for key in throwaway:  # a few thousand tiny frames, each from a fresh key
                    await attacker.publish(MQTT_TOPIC, frame(key, counter.next()), qos=0)
            stats = victim.stats

            def flood_processed() -> bool:
                return stats.delivered + stats.dropped() >= FLOOD

            await eventually(flood_processed, limit_s=60)
            assert stats.dropped(DropReason.STRANGER_BUDGET) > FLOOD // 2
            assert stats.dropped(DropReason.SENDER_TABLE_FULL) == 0
            await miner.publish(TOPIC, b"miner's contribution")
            await eventually(lambda: (miner.peer_id, b"miner's contribution") in received,
                             limit_s=10)
            assert await miner.request(victim.peer_id, "echo", b"ping", timeout=10) == b"ping"
            consumer.cancel()

    asyncio.run(scenario())
