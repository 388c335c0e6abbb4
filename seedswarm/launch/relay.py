"""The operator's always-on peer: the seed a new network's file names.

A joiner with only the network file must get the genesis checkpoint from someone, and on libp2p
must dial someone. The seed is that someone: a peer on the operator's machine that serves the
genesis checkpoint by hash; on libp2p it is also the bootstrap peer, joining every gossip topic
(GossipSub forwards only the topics a peer is subscribed to) and taking part in the peer
exchange so that joiners learn each other's addresses and connect directly. It holds no stake,
does no work and votes on nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from adapters.transport.base import Limits, Subscription
from protocol.domain_types import ModelHash
from protocol.identity import NodeKey
from protocol.roundlog import TOPIC_BUNDLES, TOPIC_CONTRIBUTIONS, TOPIC_ENDORSEMENTS
from runtime.genesis_exchange import GENESIS_PROTOCOL, genesis_handler
from seedswarm.launch.node_transport import TRANSPORT_MESSAGE_LIMIT, keep_connected

RELAYED_TOPICS = (TOPIC_CONTRIBUTIONS, TOPIC_BUNDLES, TOPIC_ENDORSEMENTS)


async def run_mqtt_seed(
    network_id: str, key: NodeKey, broker: tuple[str, int], genesis: tuple[ModelHash, Path],
    on_ready: Callable[[str], None], password: str = "",
) -> None:
    """MQTT: serve the genesis checkpoint through the broker until cancelled; `on_ready` gets
    the seed's peer id once it is connected (`password`: its broker account's, if any)."""
    from adapters.transport.mqtt import MqttConfig, MqttTransport

    host, port = broker
    config = MqttConfig(host=host, port=port, password=password)
    transport = MqttTransport(config, key=key, network_id=network_id,
                              limits=Limits(max_message_bytes=TRANSPORT_MESSAGE_LIMIT))
    async with transport:
        transport.serve(GENESIS_PROTOCOL, genesis_handler(*genesis))
        on_ready(transport.peer_id)
        await transport.wait_failed()


async def run_relay(
    network_id: str, key: NodeKey, host: str, port: int, genesis: tuple[ModelHash, Path],
    on_ready: Callable[[tuple[str, ...]], None],
) -> None:
    """libp2p: relay and serve until cancelled (or until its host dies: TransportError);
    `on_ready` gets the relay's multiaddrs once it listens."""
    from adapters.transport.libp2p_host import Libp2pConfig
    from adapters.transport.libp2p_transport import Libp2pTransport

    config = Libp2pConfig(key_seed=key.to_bytes(), listen_host=host, listen_port=port)
    transport = Libp2pTransport(config, network_id=network_id,
                                limits=Limits(max_message_bytes=TRANSPORT_MESSAGE_LIMIT))
    async with transport:
        transport.serve(GENESIS_PROTOCOL, genesis_handler(*genesis))
        subscriptions = [await transport.subscribe(topic) for topic in RELAYED_TOPICS]
        on_ready(transport.listen_addrs)
        async with asyncio.TaskGroup() as group:
            for subscription in subscriptions:
                group.create_task(_drain(subscription))
            group.create_task(keep_connected(transport, ()))
            group.create_task(transport.wait_failed())  # a dead host ends the relay, loudly


async def _drain(subscription: Subscription) -> None:
    """The relay forwards what it hears; it has nothing to do with it itself."""
    async for _ in subscription:
        pass
