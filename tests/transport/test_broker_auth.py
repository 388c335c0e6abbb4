"""A deployment's mosquitto: per-node accounts and topic ACLs (adapters.transport.broker_auth).

Runs the real broker with generated files: nodes with their derived passwords work as usual;
anonymous clients and wrong passwords cannot even connect (so the throw-away keys of issue 15
need an account the operator can revoke); a node cannot read another node's inbox.
"""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from adapters.transport.base import Limits, Request
from adapters.transport.broker_auth import new_secret, node_password
from adapters.transport.mqtt import MqttConfig, MqttTransport
from adapters.transport.mqtt_broker import BrokerAccounts, BrokerUnavailable, MosquittoBroker
from protocol.identity import NodeKey
from tests.transport.harness import seed_for

NET = "acl-net"
TOPIC = "contributions"


def key_of(label: str) -> NodeKey:
    return NodeKey.from_bytes(seed_for(f"broker-auth/{label}"))


@pytest.mark.network
def test_accounts_and_acls_on_a_real_mosquitto() -> None:
    secret = new_secret()
    alice, bob, eve = key_of("alice"), key_of("bob"), key_of("eve")
    accounts = BrokerAccounts(NET, {k.peer_id: node_password(secret, k.peer_id)
                                    for k in (alice, bob, eve)})

    def node(port: int, key: NodeKey, password: str) -> MqttTransport:
        config = MqttConfig(port=port, password=password, operation_timeout_s=5)
        return MqttTransport(config, key=key, network_id=NET, limits=Limits())

    async def echo(request: Request) -> bytes:
        return request.data

    async def scenario() -> None:
        broker = MosquittoBroker(accounts=accounts)
        try:
            await broker.start()
        except BrokerUnavailable as exc:
            pytest.fail(f"this test needs mosquitto: {exc}")
        try:
            port = broker.port
            a = node(port, alice, node_password(secret, alice.peer_id))
            b = node(port, bob, node_password(secret, bob.peer_id))
            async with a, b:
                b.serve("echo", echo)
                inbox = await b.subscribe(TOPIC)
                await a.publish(TOPIC, b"hello")
                async with asyncio.timeout(10):
                    delivery = await inbox.get()
                assert (delivery.from_peer, delivery.data) == (alice.peer_id, b"hello")
                # eve, a node with an account, listens on bob's inbox: the ACL keeps it out
                eve_password = node_password(secret, eve.peer_id)
                async with aiomqtt.Client("127.0.0.1", port, username=eve.peer_id,
                                          password=eve_password) as snoop:
                    await snoop.subscribe(f"seedswarm/{NET}/rpc/{bob.peer_id}", qos=1)
                    await snoop.subscribe(f"seedswarm/{NET}/t/{TOPIC}", qos=1)
                    assert await a.request(bob.peer_id, "echo", b"private", timeout=10) == (
                        b"private")
                    await a.publish(TOPIC, b"public")
                    topics = []
                    async with asyncio.timeout(10):
                        async for message in snoop.messages:
                            topics.append(str(message.topic))
                            if message.topic.matches(f"seedswarm/{NET}/t/#"):
                                break
                    assert topics == [f"seedswarm/{NET}/t/{TOPIC}"]  # gossip yes, inbox no
            # no account, a wrong password, or another's password: no connection at all
            for user, password in ((None, None), (alice.peer_id, "guess"),
                                   (eve.peer_id, node_password(secret, alice.peer_id))):
                with pytest.raises(aiomqtt.MqttError):
                    async with aiomqtt.Client("127.0.0.1", port, username=user,
                                              password=password, timeout=5):
                        pass
            stranger = node(port, key_of("stranger"), "")
            with pytest.raises(Exception, match="cannot connect"):
                await stranger.start()
        finally:
            await broker.stop()

    asyncio.run(scenario())


def test_passwords_are_per_node_and_per_secret() -> None:
    secret, other = new_secret(), new_secret()
    alice, bob = key_of("alice").peer_id, key_of("bob").peer_id
    assert node_password(secret, alice) == node_password(secret, alice)
    assert len({node_password(secret, alice), node_password(secret, bob),
                node_password(other, alice)}) == 3
    with pytest.raises(ValueError):
        node_password(b"short", alice)
