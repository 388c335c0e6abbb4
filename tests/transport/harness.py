"""Small swarms of one transport implementation, for the shared contract suite.

Every harness builds `size` nodes of one network on one medium (a MemoryNetwork, three libp2p
hosts in a star around node 0, or MQTT clients of one broker), can add a node of another
network to the same medium, knows how to wait until a topic's subscriptions have propagated,
and stops everything it started.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
from collections.abc import Callable, Sequence

from adapters.transport.base import Limits
from adapters.transport.core import TransportCore, poll_until
from adapters.transport.libp2p_host import Libp2pConfig
from adapters.transport.libp2p_transport import Libp2pTransport
from adapters.transport.memory import MemoryNetwork, MemoryTransport
from adapters.transport.mqtt import MqttConfig, MqttTransport
from adapters.transport.mqtt_broker import EmbeddedBroker
from protocol.identity import NodeKey

NETWORK = "contract-net"
READY_LIMIT_S = 20.0


def seed_for(label: str) -> bytes:
    """A fixed 32-byte Ed25519 seed per label, so runs are reproducible."""
    return hashlib.sha256(f"seedswarm-transport-test/{label}".encode()).digest()


async def eventually(predicate: Callable[[], bool], *, limit_s: float = READY_LIMIT_S) -> None:
    """Poll `predicate` until it holds; fail the test after `limit_s` seconds."""
    async with asyncio.timeout(limit_s):
        await poll_until(predicate)


class Harness(abc.ABC):
    """A running swarm of one implementation; use as `async with harness as nodes`."""

    kind: str = ""

    def __init__(self, size: int = 3, limits: Sequence[Limits] | None = None) -> None:
        self.size = size
        self.limits = list(limits) if limits is not None else [Limits()] * size
        self.nodes: list[TransportCore] = []
        self._extras: list[TransportCore] = []

    async def __aenter__(self) -> list[TransportCore]:
        await self._open_medium()
        for index in range(self.size):
            node = self._make(index, NETWORK, self.limits[index])
            self.nodes.append(node)
            await node.start()
        return self.nodes

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.gather(*(node.stop() for node in self.nodes + self._extras))
        await self._close_medium()

    async def add_node(self, network_id: str) -> TransportCore:
        """A further node on the same medium, possibly of another network."""
        node = self._make(self.size + len(self._extras), network_id, Limits())
        self._extras.append(node)
        await node.start()
        return node

    async def ready(self, topic: str, subscribers: Sequence[TransportCore]) -> None:
        """Wait until a publish on `topic` from any node reaches every node in `subscribers`."""
        async with asyncio.timeout(READY_LIMIT_S):
            for node in self.nodes:
                await node.wait_for_subscribers(topic, self.neighbours(node, subscribers))

    def neighbours(self, node: TransportCore, subscribers: Sequence[TransportCore]) -> int:
        """How many of `subscribers` receive `node`'s publishes directly."""
        return sum(1 for other in subscribers if other is not node)

    @abc.abstractmethod
    def _make(self, index: int, network_id: str, limits: Limits) -> TransportCore: ...

    async def _open_medium(self) -> None:  # noqa: B027 - optional hook
        """Start what the nodes connect to (a broker), if anything."""

    async def _close_medium(self) -> None:  # noqa: B027 - optional hook
        """Stop what `_open_medium` started."""


class MemoryHarness(Harness):
    kind = "memory"

    def __init__(self, size: int = 3, limits: Sequence[Limits] | None = None) -> None:
        super().__init__(size, limits)
        self._network = MemoryNetwork()

    def _make(self, index: int, network_id: str, limits: Limits) -> TransportCore:
        return MemoryTransport(
            self._network, f"memory-{index}", network_id=network_id, limits=limits
        )


class Libp2pHarness(Harness):
    """Node 0 is the hub every other host bootstraps to; leaves reach each other through it."""

    kind = "libp2p"

    def _make(self, index: int, network_id: str, limits: Limits) -> TransportCore:
        bootstrap = self.nodes[0].listen_addrs if index > 0 else ()
        config = Libp2pConfig(key_seed=seed_for(f"node-{index}"), bootstrap=bootstrap)
        return Libp2pTransport(config, network_id=network_id, limits=limits)

    def neighbours(self, node: TransportCore, subscribers: Sequence[TransportCore]) -> int:
        hub = self.nodes[0]
        if node is hub:
            return sum(1 for other in subscribers if other is not hub)
        return 1 if hub in subscribers else 0


class MqttHarness(Harness):
    """MQTT clients of one broker: an embedded amqtt one, or an already running broker."""

    def __init__(
        self,
        size: int = 3,
        limits: Sequence[Limits] | None = None,
        *,
        broker_port: int | None = None,
    ) -> None:
        super().__init__(size, limits)
        self._external_port = broker_port
        self._broker: EmbeddedBroker | None = None
        self.kind = "mqtt-mosquitto" if broker_port else "mqtt-amqtt"

    @property
    def port(self) -> int:
        if self._external_port is not None:
            return self._external_port
        assert self._broker is not None
        return self._broker.port

    async def _open_medium(self) -> None:
        if self._external_port is None:
            self._broker = EmbeddedBroker()
            await self._broker.start()

    async def _close_medium(self) -> None:
        if self._broker is not None:
            await self._broker.stop()

    def _make(self, index: int, network_id: str, limits: Limits) -> TransportCore:
        key = NodeKey.from_bytes(seed_for(f"mqtt-node-{index}"))
        config = MqttConfig(port=self.port)
        return MqttTransport(config, key=key, network_id=network_id, limits=limits)
