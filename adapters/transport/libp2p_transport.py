"""The libp2p transport: py-libp2p (trio) hosted inside asyncio through a TrioBridge.

Topics map to GossipSub topics `/seedswarm/<network id>/<topic>`; direct requests open a
stream with protocol id `/seedswarm/<network id>/req/<protocol>`. The host key is the node's
Ed25519 identity key, so the libp2p peer id equals protocol.identity's peer id.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from adapters.transport.base import Limits, Request, Traits, TransportClosed, TransportError
from adapters.transport.core import TransportCore, poll_until, raise_for_status
from adapters.transport.framing import ResponseStatus
from adapters.transport.libp2p_host import Libp2pConfig, Libp2pNode
from adapters.transport.trio_bridge import TrioBridge
from protocol.domain_types import PublicKey
from protocol.identity import peer_id_from_public_bytes

_TRAITS = Traits(ordered_per_publisher=False, may_replay_recent=True)
_ROOT = "/seedswarm"


class Libp2pTransport(TransportCore):
    """GossipSub topics and request streams over TCP + Noise + Yamux."""

    def __init__(
        self,
        config: Libp2pConfig,
        *,
        network_id: str,
        limits: Limits | None = None,
        bridge: TrioBridge | None = None,
    ) -> None:
        super().__init__(network_id, limits or Limits(), "libp2p")
        self._config = config
        self._given_bridge = bridge
        self._bridge: TrioBridge | None = None
        self._peer_id = _peer_id_of_seed(config.key_seed)
        self._prefix = f"{_ROOT}/{self._network_id}/"
        self._node = Libp2pNode(
            config,
            max_message_bytes=self._limits.max_message_bytes,
            stats=self._stats,
            on_message=self._on_gossip,
            answer=self._answer_from_trio,
            on_died=self._host_died,
        )

    @property
    def peer_id(self) -> str:
        return self._peer_id

    @property
    def listen_addrs(self) -> tuple[str, ...]:
        return self._node.listen_addrs

    @property
    def traits(self) -> Traits:
        return _TRAITS

    async def connect(self, addr: str) -> None:
        """Dial another host by its /p2p/ multiaddr."""
        self._require_running()
        await self._require_bridge().call(self._node.connect, addr)

    def connected_peers(self) -> list[str]:
        """Peer ids with an open connection."""
        return self._node.connected_peers()

    async def wait_for_subscribers(self, topic: str, count: int) -> None:
        gossip_topic = self._gossip_topic(topic)
        await poll_until(lambda: self._node.reachable_subscribers(gossip_topic) >= count)

    async def _open(self) -> None:
        self._bridge = bridge = self._given_bridge or await TrioBridge.acquire()
        bridge.when_finished(lambda: self._lost(bridge, "its trio run ended"))
        for protocol in self._handlers:
            self._on_serve(protocol)
        await self._bridge.start_task(self._node.run)

    async def _close(self) -> None:
        bridge, self._bridge = self._bridge, None
        if bridge is None:
            return
        try:
            if not bridge.finished:
                await bridge.call(self._node.stop)
        finally:
            if self._given_bridge is None:
                await bridge.release()

    async def _join(self, topic: str) -> None:
        await self._require_bridge().call(self._node.subscribe, self._gossip_topic(topic))

    async def _leave(self, topic: str) -> None:
        await self._require_bridge().call(self._node.unsubscribe, self._gossip_topic(topic))

    async def _send_publish(self, topic: str, data: bytes) -> None:
        await self._require_bridge().call(self._node.publish, self._gossip_topic(topic), data)

    async def _send_request(self, peer: str, protocol: str, data: bytes, limit_s: float) -> bytes:
        bridge = self._require_bridge()
        status, response = await bridge.call(
            self._node.request, peer, self._protocol_id(protocol), data
        )
        raise_for_status(status, peer, protocol)
        return response

    def _on_serve(self, protocol: str) -> None:
        self._node.add_protocol(self._protocol_id(protocol), protocol)

    def _on_gossip(self, gossip_topic: str, data: bytes, from_peer: str, forwarder: str) -> None:
        if gossip_topic.startswith(self._prefix):
            self._deliver(gossip_topic[len(self._prefix) :], data, from_peer, forwarder)

    def _host_died(self, reason: str) -> None:
        self._lost(self._bridge, reason)

    def _lost(self, bridge: TrioBridge | None, reason: str) -> None:
        """The host ended without `stop`: fail the transport (the node exits non-zero)."""
        if self.running and bridge is not None and bridge is self._bridge:
            self._fail(TransportError(f"libp2p host {self._peer_id} died: {reason}"))

    async def _answer_from_trio(self, request: Request) -> tuple[ResponseStatus, bytes]:
        return await self._require_bridge().call_asyncio(self._answer, request)

    def _gossip_topic(self, topic: str) -> str:
        return self._prefix + topic

    def _protocol_id(self, protocol: str) -> str:
        return f"{self._prefix}req/{protocol}"

    def _require_bridge(self) -> TrioBridge:
        if self._bridge is None:
            raise TransportClosed("libp2p transport is not running")
        return self._bridge


def _peer_id_of_seed(seed: bytes) -> str:
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return peer_id_from_public_bytes(PublicKey(public.public_bytes(Encoding.Raw, PublicFormat.Raw)))
