"""The asyncio-facing transport interface that every implementation satisfies.

A transport moves opaque bytes: broadcast on named topics (publish/subscribe) and direct
request/response exchanges with one peer. It authenticates nothing above its own link layer;
signed envelopes (protocol.signing) do that. Every topic and request protocol is namespaced by
the network id, so two networks sharing a broker or a swarm never see each other's traffic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from adapters.transport.stats import TransportStats
from protocol.errors import SeedswarmError

DEFAULT_MAX_MESSAGE_BYTES = 1 << 20
DEFAULT_SUBSCRIPTION_CAPACITY = 4096


class TransportError(SeedswarmError):
    """A transport operation failed."""


class TransportClosed(TransportError):
    """The transport is not running (never started, or stopped)."""


class PayloadTooLarge(TransportError, ValueError):
    """An outbound payload exceeds the configured message size limit."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"payload of {size} bytes exceeds the {limit}-byte limit")


class RequestFailed(TransportError):
    """A direct request got no usable response (unknown peer or protocol, handler error)."""


class RequestTimeout(RequestFailed, TimeoutError):
    """A direct request got no response within its timeout."""


@dataclass(frozen=True)
class Limits:
    """Resource bounds shared by every implementation."""

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    subscription_capacity: int = DEFAULT_SUBSCRIPTION_CAPACITY

    def __post_init__(self) -> None:
        if self.max_message_bytes <= 0 or self.subscription_capacity <= 0:
            raise ValueError("transport limits must be positive")


@dataclass(frozen=True)
class Traits:
    """Guarantees that differ between implementations; callers must not assume more."""

    ordered_per_publisher: bool
    """Deliveries from one publisher on one topic arrive in publish order."""
    may_replay_recent: bool
    """A new subscriber may also receive messages published shortly before it subscribed."""


@dataclass(frozen=True)
class Delivery:
    """One message received on a subscribed topic.

    `from_peer` is the publisher as the transport authenticated it: by libp2p's message
    signature, or over MQTT by the frame's Ed25519 signature (the peer id is derived from the
    signing key). It says who published the bytes on the transport; verify the signed
    envelope in `data` for who wrote them.

    `forwarder` is the neighbour that handed the bytes to this node: on libp2p the mesh peer
    whose RPC carried them, which may be anyone once a message is old enough to be forgotten
    by the swarm's seen-caches (then anyone can send it again, still signed by `from_peer`);
    over MQTT and in memory the publisher itself, since each frame's sender is authenticated
    and replays of it are refused. Rate limits apply to the forwarder (runtime.peergate).
    """

    topic: str
    data: bytes
    from_peer: str
    forwarder: str = ""

    def __post_init__(self) -> None:
        if not self.forwarder:
            object.__setattr__(self, "forwarder", self.from_peer)


@dataclass(frozen=True)
class Request:
    """A direct request handed to a served protocol's handler."""

    from_peer: str
    protocol: str
    data: bytes


Handler = Callable[[Request], Awaitable[bytes]]


@runtime_checkable
class Subscription(Protocol):
    """An async iterator of deliveries on one topic; ends when closed or the transport stops."""

    @property
    def topic(self) -> str: ...

    def __aiter__(self) -> AsyncIterator[Delivery]: ...

    async def __anext__(self) -> Delivery: ...

    async def get(self) -> Delivery:
        """The next delivery; StopAsyncIteration once closed (bound it with asyncio.timeout)."""
        ...

    def pending(self) -> int:
        """Deliveries queued and not yet consumed."""
        ...

    async def close(self) -> None:
        """Stop receiving; the transport leaves the topic when its last subscription closes."""
        ...


@runtime_checkable
class Transport(Protocol):
    """What node/ and validator/ use to talk to the network."""

    @property
    def network_id(self) -> str: ...

    @property
    def peer_id(self) -> str:
        """This node's id on the network (libp2p peer id of its Ed25519 key where known)."""
        ...

    @property
    def listen_addrs(self) -> tuple[str, ...]:
        """Addresses others can reach this node at (multiaddrs, or the broker URL)."""
        ...

    @property
    def limits(self) -> Limits: ...

    @property
    def traits(self) -> Traits: ...

    @property
    def stats(self) -> TransportStats: ...

    async def start(self) -> None:
        """Connect / listen. Idempotent while running; a stopped transport cannot restart."""
        ...

    async def stop(self) -> None:
        """Release every socket, task and subscription. Idempotent."""
        ...

    async def publish(self, topic: str, data: bytes) -> None:
        """Broadcast `data`; waits (backpressure) rather than dropping when links are busy.

        Raises PayloadTooLarge above `limits.max_message_bytes`, TransportClosed when stopped.
        Subscribers on this same node receive the message too.
        """
        ...

    async def subscribe(self, topic: str) -> Subscription:
        """Start receiving `topic`; returns once this node's subscription is in effect."""
        ...

    async def wait_for_subscribers(self, topic: str, count: int) -> None:
        """Wait until `count` neighbours will receive this node's next publish on `topic`.

        libp2p: directly connected peers in the topic mesh; memory: other subscribed nodes;
        MQTT: returns at once, since the broker fans out to every acknowledged subscription.
        Unbounded: wrap it in asyncio.timeout.
        """
        ...

    async def request(
        self,
        peer: str,
        protocol: str,
        data: bytes,
        *,
        timeout: float,  # noqa: ASYNC109 - mandatory: a direct request must never hang
    ) -> bytes:
        """Send `data` to `peer`'s handler for `protocol` and return its response.

        RequestTimeout after `timeout` seconds; RequestFailed for an unknown peer or protocol
        or a failing handler; PayloadTooLarge above the size limit.
        """
        ...

    def serve(self, protocol: str, handler: Handler) -> None:
        """Answer direct requests for `protocol` (replaces an earlier handler)."""
        ...
