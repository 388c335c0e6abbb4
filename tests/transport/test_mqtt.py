"""MQTT specifics: hostile payloads on the broker, redeliveries, absent peers, brokers."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiomqtt
import pytest

from adapters.transport.base import Limits, RequestTimeout, TransportError
from adapters.transport.mqtt import MqttConfig, MqttTransport
from adapters.transport.mqtt_broker import BrokerUnavailable, EmbeddedBroker, MosquittoBroker
from adapters.transport.mqtt_wire import Auth, PublishEnvelope, SequenceCounter, seal
from adapters.transport.stats import DropReason
from protocol.identity import NodeKey
from tests.transport.harness import eventually, seed_for

pytestmark = pytest.mark.network
NET = "mqtt-test"


def key_of(label: str) -> NodeKey:
    return NodeKey.from_bytes(seed_for(label))


def node(broker_port: int, label: str) -> MqttTransport:
    config = MqttConfig(port=broker_port)
    return MqttTransport(config, key=key_of(label), network_id=NET, limits=Limits())


def test_garbage_and_redelivered_envelopes_are_counted_and_survived() -> None:
    async def scenario() -> None:
        async with EmbeddedBroker() as broker, node(broker.port, "victim") as victim:
            subscription = await victim.subscribe("t")
            topic = f"seedswarm/{NET}/t/t"
            sender = key_of("sender")
            auth = Auth(sender.public.raw, SequenceCounter().next(), sender.peer_id)
            genuine = seal(PublishEnvelope(auth, b"once"), sender, network_id=NET, topic=topic)
            async with aiomqtt.Client("127.0.0.1", broker.port) as raw:
                await raw.publish(topic, b"\x00garbage", qos=1)
                await raw.publish(topic, genuine[:40], qos=1)  # truncated
                inbox = f"seedswarm/{NET}/rpc/{victim.peer_id}"
                await raw.publish(inbox, b"SW\x02\x03" + bytes(9), qos=1)
                await raw.publish(topic, genuine, qos=1)
                await raw.publish(topic, genuine, qos=1)  # a QoS 1 redelivery looks like this
            async with asyncio.timeout(10):
                first = await subscription.get()
            assert (first.data, first.from_peer) == (b"once", sender.peer_id)
            await eventually(lambda: victim.stats.dropped(DropReason.DUPLICATE) == 1)
            assert victim.stats.dropped(DropReason.MALFORMED) == 3
            assert subscription.pending() == 0
            await victim.publish("t", b"still alive")
            async with asyncio.timeout(10):
                assert (await subscription.get()).data == b"still alive"

    asyncio.run(scenario())


def test_request_to_a_peer_that_left_times_out() -> None:
    async def scenario() -> None:
        async with EmbeddedBroker() as broker, node(broker.port, "asker") as asker:
            with pytest.raises(RequestTimeout):
                await asker.request("nobody-home", "echo/1", b"?", timeout=0.5)
            assert asker.stats.requests_sent == 1

    asyncio.run(scenario())


def accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_embedded_broker_listens_only_while_started() -> None:
    async def scenario() -> None:
        broker = EmbeddedBroker()
        await broker.start()
        await broker.start()
        assert accepts(broker.port)
        await broker.stop()
        await broker.stop()
        await eventually(lambda: not accepts(broker.port), limit_s=5)

    asyncio.run(scenario())


def process_exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def test_mosquitto_process_is_started_on_loopback_and_stopped(mosquitto_port: int) -> None:
    async def scenario() -> None:
        broker = MosquittoBroker()
        await broker.start()
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        assert broker.port != mosquitto_port and accepts(broker.port)
        pid = broker.pid
        assert pid is not None and process_exists(pid)
        await broker.stop()
        await broker.stop()
        assert broker.pid is None
        assert not accepts(broker.port)
        assert not process_exists(pid)  # exited and reaped, not a zombie

    asyncio.run(scenario())


def test_a_missing_mosquitto_is_one_error_that_says_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Nodes never install system packages; without the binary they say what to do."""
    import adapters.transport.mqtt_broker as brokers

    monkeypatch.setattr(brokers, "find_mosquitto", lambda: None)
    with pytest.raises(BrokerUnavailable, match="apt-get install -y mosquitto") as caught:
        asyncio.run(MosquittoBroker().start())
    assert "\n" not in str(caught.value)
    assert not hasattr(brokers, "install_mosquitto")


def test_a_lost_broker_is_reconnected_then_given_up_after_the_limit() -> None:
    """The broker restarts: the node reconnects, resubscribes and hears the topic again. The
    broker stays away: after its limit the transport fails, naming the broker, so that the
    node exits rather than lives on without a network."""

    async def scenario() -> None:
        broker = EmbeddedBroker()
        await broker.start()
        config = MqttConfig(port=broker.port, reconnect_limit_s=20.0)
        listener = MqttTransport(config, key=key_of("listener"), network_id=NET,
                                 limits=Limits())
        async with listener:
            subscription = await listener.subscribe("t")
            await broker.stop()
            await asyncio.sleep(1.0)
            broker = EmbeddedBroker(broker.port)  # back, same address, no state
            await broker.start()
            async with node(broker.port, "speaker") as speaker:
                async with asyncio.timeout(30):
                    while subscription.pending() == 0:  # until the listener is back
                        await speaker.publish("t", b"are you there")
                        await asyncio.sleep(0.5)
                    assert (await subscription.get()).data == b"are you there"
            await broker.stop()
            with pytest.raises(TransportError, match=rf"127\.0\.0\.1:{broker.port} for 20 s"):
                async with asyncio.timeout(60):
                    await listener.wait_failed()

    asyncio.run(scenario())
