"""Transports: one asyncio interface (base.Transport), three implementations.

- memory.MemoryTransport: in-process, for tests and the simulator;
- libp2p_transport.Libp2pTransport: py-libp2p GossipSub + streams (TCP, Noise, Yamux);
- mqtt.MqttTransport: aiomqtt QoS 1 against mqtt_broker.EmbeddedBroker or mosquitto.

The libp2p and MQTT modules import heavy dependencies, so import them explicitly.
"""

from adapters.transport.base import (
    Delivery,
    Handler,
    Limits,
    PayloadTooLarge,
    Request,
    RequestFailed,
    RequestTimeout,
    Subscription,
    Traits,
    Transport,
    TransportClosed,
    TransportError,
)
from adapters.transport.memory import MemoryNetwork, MemoryTransport
from adapters.transport.stats import DropReason, TransportStats

__all__ = [
    "Delivery",
    "DropReason",
    "Handler",
    "Limits",
    "MemoryNetwork",
    "MemoryTransport",
    "PayloadTooLarge",
    "Request",
    "RequestFailed",
    "RequestTimeout",
    "Subscription",
    "Traits",
    "Transport",
    "TransportClosed",
    "TransportError",
    "TransportStats",
]
