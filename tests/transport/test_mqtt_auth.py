"""MQTT frame authentication: forged, mismatched, replayed, tampered and misdirected frames.

The attacker is a raw MQTT client of the same broker (no ACLs: it may publish and subscribe
anywhere) that crafts frames with adapters.transport.mqtt_wire, signed with its own key.
The verifier's window rules are also checked directly, with a fake clock.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import aiomqtt
import pytest

from adapters.transport.base import Limits, Request
from adapters.transport.framing import ResponseStatus
from adapters.transport.mqtt import MqttConfig, MqttTransport
from adapters.transport.mqtt_broker import EmbeddedBroker
from adapters.transport.mqtt_wire import (
    Auth,
    Envelope,
    FrameVerifier,
    PublishEnvelope,
    Refused,
    RequestEnvelope,
    ResponseEnvelope,
    SequenceCounter,
    VerifierLimits,
    decode,
    seal,
)
from adapters.transport.stats import DropReason
from adapters.transport.subscription import QueueSubscription
from protocol.identity import NodeKey
from runtime.peergate import GatePolicy, PeerGate
from tests.transport.harness import eventually, seed_for

NET = "auth-net"
TOPIC = "contributions"
MQTT_TOPIC = f"seedswarm/{NET}/t/{TOPIC}"
SETTLE_S = 0.3


def key_of(label: str) -> NodeKey:
    return NodeKey.from_bytes(seed_for(f"mqtt-auth/{label}"))


def inbox(peer: str) -> str:
    return f"seedswarm/{NET}/rpc/{peer}"


def node(port: int, label: str, verifier: VerifierLimits | None = None) -> MqttTransport:
    config = MqttConfig(port=port, verifier=verifier or VerifierLimits())
    return MqttTransport(config, key=key_of(label), network_id=NET, limits=Limits())


class Forger:
    """Crafts frames signed by `key`, whatever key or id they claim."""

    def __init__(self, key: NodeKey) -> None:
        self.key = key
        self.seq = SequenceCounter()

    def auth(self, *, public_key: bytes | None = None, sender: str | None = None) -> Auth:
        return Auth(
            public_key if public_key is not None else self.key.public.raw,
            self.seq.next(),
            sender if sender is not None else self.key.peer_id,
        )

    def frame(self, envelope: Envelope, topic: str) -> bytes:
        return seal(envelope, self.key, network_id=NET, topic=topic)


async def raw_client(port: int) -> aiomqtt.Client:
    client = aiomqtt.Client("127.0.0.1", port)
    await client.__aenter__()
    return client


async def receive_raw(client: aiomqtt.Client, limit_s: float = 10) -> tuple[str, bytes]:
    async with asyncio.timeout(limit_s):
        message = await anext(aiomqtt_messages(client))
    assert isinstance(message.payload, bytes)
    return str(message.topic), message.payload


def aiomqtt_messages(client: aiomqtt.Client):  # type: ignore[no-untyped-def]
    return client.messages.__aiter__()


async def drain(subscription: QueueSubscription) -> list[tuple[str, bytes]]:
    await asyncio.sleep(SETTLE_S)
    out = []
    while subscription.pending():
        delivery = await subscription.get()
        out.append((delivery.from_peer, delivery.data))
    return out


def run(scenario: Callable[[], object]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


@pytest.fixture(params=["amqtt", "mosquitto"])
def shared_port(request: pytest.FixtureRequest) -> int | None:
    """The session's mosquitto port, or None for a fresh embedded amqtt broker per test."""
    if request.param == "mosquitto":
        port: int = request.getfixturevalue("mosquitto_port")
        return port
    return None


async def open_broker(shared: int | None) -> tuple[int, EmbeddedBroker | None]:
    if shared is not None:
        return shared, None
    broker = EmbeddedBroker()
    await broker.start()
    return broker.port, broker


@pytest.mark.network
def test_forged_frames_never_count_against_the_impersonated_peer(
    shared_port: int | None,
) -> None:
    """Frames claiming the victim (by key or by id) are refused; junk counts against its author."""
    gate = PeerGate(GatePolicy(max_invalid=3))
    victim_key, attacker = key_of("victim"), Forger(key_of("attacker"))

    async def scenario() -> None:
        port, broker = await open_broker(shared_port)
        try:
            async with node(port, "receiver") as receiver, node(port, "victim") as victim:
                subscription = await receiver.subscribe(TOPIC)
                raw = await raw_client(port)
                try:
                    for index in range(5):
                        # the victim's key, the attacker's signature: a forgery
                        claim_key = attacker.auth(public_key=victim_key.public.raw)
                        forged = PublishEnvelope(claim_key, b"junk %d" % index)
                        await raw.publish(MQTT_TOPIC, attacker.frame(forged, MQTT_TOPIC), qos=1)
                        # the attacker's own valid signature, declaring the victim's id
                        claim_id = attacker.auth(sender=victim_key.peer_id)
                        mismatch = PublishEnvelope(claim_id, b"junk %d" % index)
                        await raw.publish(MQTT_TOPIC, attacker.frame(mismatch, MQTT_TOPIC), qos=1)
                    # junk under its own name is delivered, attributed to the attacker
                    for index in range(5):
                        own = PublishEnvelope(attacker.auth(), b"junk own %d" % index)
                        await raw.publish(MQTT_TOPIC, attacker.frame(own, MQTT_TOPIC), qos=1)
                finally:
                    await raw.__aexit__(None, None, None)
                await victim.publish(TOPIC, b"honest")
                stats = receiver.stats
                await eventually(lambda: subscription.pending() == 6)
                delivered = await drain(subscription)
                assert stats.dropped(DropReason.BAD_SIGNATURE) == 5
                assert stats.dropped(DropReason.SENDER_MISMATCH) == 5
                for peer, data in delivered:  # what a node's gate would see
                    if data.startswith(b"junk"):
                        gate.reject(peer, "malformed", "junk", now=0.0)
                    else:
                        gate.accept()
        finally:
            if broker is not None:
                await broker.stop()
        assert (victim_key.peer_id, b"honest") in delivered
        assert {peer for peer, _ in delivered} == {victim_key.peer_id, attacker.key.peer_id}
        assert gate.refused_by(victim_key.peer_id) == {}
        assert not gate.is_banned(victim_key.peer_id, now=1.0)
        assert gate.refused_by(attacker.key.peer_id)["malformed"] == 5
        assert gate.is_banned(attacker.key.peer_id, now=1.0)

    run(scenario)


@pytest.mark.network
def test_replayed_stale_tampered_and_redirected_frames_are_refused(
    shared_port: int | None,
) -> None:
    small_window = VerifierLimits(history=4)

    async def scenario() -> None:
        port, broker = await open_broker(shared_port)
        try:
            async with (
                node(port, "receiver", small_window) as receiver,
                node(port, "publisher") as publisher,
            ):
                subscription = await receiver.subscribe(TOPIC)
                other = await receiver.subscribe("other")
                sniffer = await raw_client(port)
                try:
                    await sniffer.subscribe(MQTT_TOPIC, qos=1)
                    await publisher.publish(TOPIC, b"first")
                    _, captured = await receive_raw(sniffer)
                    await eventually(lambda: subscription.pending() == 1)

                    await sniffer.publish(MQTT_TOPIC, captured, qos=1)  # same sequence again
                    await eventually(lambda: receiver.stats.dropped(DropReason.DUPLICATE) == 1)

                    for index in range(6):  # push the first frame below the 4-frame window
                        await publisher.publish(TOPIC, b"later %d" % index)
                    await eventually(lambda: subscription.pending() == 7)
                    await sniffer.publish(MQTT_TOPIC, captured, qos=1)
                    await eventually(lambda: receiver.stats.dropped(DropReason.REPLAYED) == 1)

                    tampered = captured[:-1] + bytes([captured[-1] ^ 1])
                    await sniffer.publish(MQTT_TOPIC, tampered, qos=1)
                    await sniffer.publish(f"seedswarm/{NET}/t/other", captured, qos=1)
                    await eventually(
                        lambda: receiver.stats.dropped(DropReason.BAD_SIGNATURE) == 2
                    )

                    forger = Forger(key_of("forger"))
                    old = Auth(forger.key.public.raw, 10**15, forger.key.peer_id)  # a 2001 clock
                    stale = forger.frame(PublishEnvelope(old, b"stale"), MQTT_TOPIC)
                    await sniffer.publish(MQTT_TOPIC, stale, qos=1)
                    await eventually(lambda: receiver.stats.dropped(DropReason.STALE_FRAME) == 1)
                finally:
                    await sniffer.__aexit__(None, None, None)
                delivered = await drain(subscription)
                assert [data for _, data in delivered] == [b"first"] + [
                    b"later %d" % i for i in range(6)
                ]
                assert other.pending() == 0
                assert receiver.stats.dropped(DropReason.MALFORMED) == 0
        finally:
            if broker is not None:
                await broker.stop()

    run(scenario)


@pytest.mark.network
def test_requests_know_who_asks_and_responses_must_come_from_the_peer_asked(
    shared_port: int | None,
) -> None:
    async def scenario() -> None:
        port, broker = await open_broker(shared_port)
        release = asyncio.Event()
        askers: list[str] = []

        async def slow_echo(req: Request) -> bytes:
            askers.append(req.from_peer)
            if req.data == b"wait":
                await release.wait()
            return b"from server: " + req.data

        try:
            async with node(port, "asker") as asker, node(port, "server") as server:
                server.serve("echo/1", slow_echo)
                attacker = Forger(key_of("attacker"))
                spy = await raw_client(port)
                try:
                    await spy.subscribe(inbox(server.peer_id), qos=1)
                    pending = asyncio.create_task(
                        asker.request(server.peer_id, "echo/1", b"wait", timeout=20)
                    )
                    _, seen = await receive_raw(spy)
                    asked = decode(seen)
                    assert isinstance(asked, RequestEnvelope)
                    # a validly signed answer, but from the attacker
                    fake = ResponseEnvelope(attacker.auth(), asked.request_id, ResponseStatus.OK,
                                            b"from attacker")
                    to_asker = inbox(asker.peer_id)
                    await spy.publish(to_asker, attacker.frame(fake, to_asker), qos=1)
                    # the server's key, the attacker's signature
                    forged = ResponseEnvelope(
                        attacker.auth(public_key=key_of("server").public.raw), asked.request_id,
                        ResponseStatus.OK, b"forged",
                    )
                    await spy.publish(to_asker, attacker.frame(forged, to_asker), qos=1)
                    await eventually(
                        lambda: asker.stats.dropped(DropReason.WRONG_RESPONDER) == 1
                        and asker.stats.dropped(DropReason.BAD_SIGNATURE) == 1
                    )
                    assert not pending.done()
                    release.set()
                    assert await pending == b"from server: wait"

                    # a request declaring the asker's id, signed by the attacker
                    to_server = inbox(server.peer_id)
                    claim = attacker.auth(sender=asker.peer_id)
                    spoofed = RequestEnvelope(claim, 1, "echo/1", b"spoofed")
                    await spy.publish(to_server, attacker.frame(spoofed, to_server), qos=1)
                    # the asker's genuine request, replayed into another inbox (its own)
                    await spy.publish(to_asker, seen, qos=1)
                    own = RequestEnvelope(attacker.auth(), 2, "echo/1", b"own name")
                    await spy.publish(to_server, attacker.frame(own, to_server), qos=1)
                    await eventually(lambda: server.stats.requests_served == 2)
                    await eventually(
                        lambda: server.stats.dropped(DropReason.SENDER_MISMATCH) == 1
                        and asker.stats.dropped(DropReason.BAD_SIGNATURE) == 2
                    )
                finally:
                    await spy.__aexit__(None, None, None)
        finally:
            if broker is not None:
                await broker.stop()
        assert askers == [asker.peer_id, attacker.key.peer_id]

    run(scenario)


# -- the verifier's rules, without a broker ---------------------------------------------------


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def signed(forger: Forger, seq: int, data: bytes = b"x") -> PublishEnvelope:
    frame = forger.frame(PublishEnvelope(Auth(forger.key.public.raw, seq, ""), data), "t")
    parsed = decode(frame)
    assert isinstance(parsed, PublishEnvelope)
    return parsed


def refusal(verifier: FrameVerifier, envelope: Envelope) -> DropReason | None:
    try:
        verifier.verify(envelope, "t")
    except Refused as refused:
        return refused.reason
    return None


def test_window_accepts_reordering_and_tells_duplicates_from_replays() -> None:
    clock = FakeClock()
    verifier = FrameVerifier(NET, VerifierLimits(history=4), clock=clock)
    forger = Forger(key_of("window"))
    base = int(clock.now * 1_000_000)
    frames = {seq: signed(forger, base + seq) for seq in range(10)}
    for seq in (2, 0, 1, 3):  # reordered, all above the floor
        assert refusal(verifier, frames[seq]) is None
    assert refusal(verifier, frames[1]) is DropReason.DUPLICATE
    assert refusal(verifier, frames[4]) is None  # evicts 0: floor = 0
    assert refusal(verifier, frames[0]) is DropReason.REPLAYED
    for seq in (5, 6, 7):
        assert refusal(verifier, frames[seq]) is None
    assert refusal(verifier, frames[2]) is DropReason.REPLAYED
    assert refusal(verifier, frames[7]) is DropReason.DUPLICATE


def test_sender_state_is_bounded_and_forgotten_only_once_stale() -> None:
    clock = FakeClock()
    limits = VerifierLimits(freshness_s=10, max_senders=3)
    verifier = FrameVerifier(NET, limits, clock=clock)
    forgers = [Forger(key_of(f"sender-{i}")) for i in range(5)]
    now_us = int(clock.now * 1_000_000)
    first = [signed(f, now_us) for f in forgers]
    for envelope in first[:3]:
        assert refusal(verifier, envelope) is None
    assert refusal(verifier, first[3]) is DropReason.SENDER_TABLE_FULL
    assert verifier.num_senders == 3
    clock.now += 11  # every tracked frame is stale now
    assert refusal(verifier, first[0]) is DropReason.STALE_FRAME
    assert refusal(verifier, signed(forgers[3], int(clock.now * 1_000_000))) is None
    assert verifier.num_senders == 1
    assert refusal(verifier, signed(forgers[4], int(clock.now * 1_000_000) + 20_000_000)) is (
        DropReason.STALE_FRAME  # too far in the future as well
    )


def test_sequence_counter_is_strictly_increasing_and_survives_a_restart() -> None:
    clock = FakeClock()
    before = SequenceCounter(clock)
    burst = [before.next() for _ in range(1000)]  # faster than the clock ticks
    assert all(b > a for a, b in itertools.pairwise(burst))
    clock.now += 0.5
    restarted = SequenceCounter(clock)
    assert restarted.next() > burst[-1]
