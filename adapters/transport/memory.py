"""In-process transport: nodes attached to one MemoryNetwork reach each other directly.

Same rules as the real transports (namespacing, limits, counters, local fan-out), no sockets:
for unit tests and the single-process simulator.
"""

from __future__ import annotations

import asyncio

from adapters.transport.base import Limits, Request, RequestFailed, Traits
from adapters.transport.core import TransportCore, poll_until, raise_for_status

_TRAITS = Traits(ordered_per_publisher=True, may_replay_recent=False)


class MemoryNetwork:
    """The shared medium. Networks with different ids can share one instance."""

    def __init__(self) -> None:
        self._nodes: dict[tuple[str, str], MemoryTransport] = {}

    def attach(self, node: MemoryTransport) -> None:
        key = (node.network_id, node.peer_id)
        if key in self._nodes:
            raise ValueError(f"peer {node.peer_id} is already attached to {node.network_id}")
        self._nodes[key] = node

    def detach(self, node: MemoryTransport) -> None:
        if self._nodes.get((node.network_id, node.peer_id)) is node:
            del self._nodes[(node.network_id, node.peer_id)]

    def find(self, network_id: str, peer_id: str) -> MemoryTransport | None:
        return self._nodes.get((network_id, peer_id))

    def members(self, network_id: str) -> list[MemoryTransport]:
        """Attached nodes of one network, in attach order (which fixes delivery order)."""
        return [node for (net, _), node in self._nodes.items() if net == network_id]


class MemoryTransport(TransportCore):
    """A node on a MemoryNetwork."""

    def __init__(
        self,
        network: MemoryNetwork,
        peer_id: str,
        *,
        network_id: str,
        limits: Limits | None = None,
    ) -> None:
        super().__init__(network_id, limits or Limits(), "memory")
        if not peer_id:
            raise ValueError("peer_id must not be empty")
        self._network = network
        self._peer_id = peer_id

    @property
    def peer_id(self) -> str:
        return self._peer_id

    @property
    def listen_addrs(self) -> tuple[str, ...]:
        return (f"memory://{self._network_id}/{self._peer_id}",)

    @property
    def traits(self) -> Traits:
        return _TRAITS

    def subscribed_to(self, topic: str) -> bool:
        return topic in self._subscribers

    async def _open(self) -> None:
        self._network.attach(self)

    async def _close(self) -> None:
        self._network.detach(self)

    async def _join(self, topic: str) -> None:
        """Nothing to announce: publishers look subscribers up when they publish."""

    async def _leave(self, topic: str) -> None:
        """Nothing to withdraw."""

    async def _send_publish(self, topic: str, data: bytes) -> None:
        for node in self._network.members(self._network_id):
            node._deliver(topic, data, self._peer_id)
        # yield, so that a tight publish loop lets consumers run as it would on a socket
        await asyncio.sleep(0)

    async def _send_request(self, peer: str, protocol: str, data: bytes, limit_s: float) -> bytes:
        target = self._network.find(self._network_id, peer)
        if target is None:
            raise RequestFailed(f"no peer {peer} on memory network {self._network_id}")
        status, response = await target._answer(Request(self._peer_id, protocol, data))
        raise_for_status(status, peer, protocol)
        return response

    async def wait_for_subscribers(self, topic: str, count: int) -> None:
        def enough() -> bool:
            others = [
                node
                for node in self._network.members(self._network_id)
                if node is not self and node.subscribed_to(topic)
            ]
            return len(others) >= count

        await poll_until(enough)
