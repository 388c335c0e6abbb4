"""Behaviour every transport shares: lifecycle, size limits, local fan-out, request dispatch.

Implementations subclass `TransportCore` and supply the network side (`_open`, `_close`,
`_join`, `_leave`, `_send_publish`, `_send_request`, `wait_for_subscribers`). They hand inbound
traffic to `_deliver` and `_answer`, which enforce the limits and keep the counters, so the
rules are identical whichever wire carries the bytes.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import logging
from collections.abc import Callable
from typing import Self

from adapters.transport.base import (
    Delivery,
    Handler,
    Limits,
    PayloadTooLarge,
    Request,
    RequestFailed,
    RequestTimeout,
    Traits,
    TransportClosed,
    TransportError,
)
from adapters.transport.framing import ResponseStatus
from adapters.transport.names import check_name, check_network_id
from adapters.transport.stats import DropReason, TransportStats
from adapters.transport.subscription import QueueSubscription


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


class TransportCore(abc.ABC):
    """Shared half of every transport; see the module docstring."""

    def __init__(self, network_id: str, limits: Limits, kind: str) -> None:
        self._network_id = check_network_id(network_id)
        self._limits = limits
        self._log = logging.getLogger(f"adapters.transport.{kind}")
        self._stats = TransportStats(self._log)
        self._state = _State.NEW
        self._lifecycle = asyncio.Lock()
        self._topic_locks: dict[str, asyncio.Lock] = {}
        self._subscribers: dict[str, list[QueueSubscription]] = {}
        self._handlers: dict[str, Handler] = {}
        self._failure: TransportError | None = None
        self._failed = asyncio.Event()

    # -- the network side, supplied by each implementation --------------------------------

    @abc.abstractmethod
    async def _open(self) -> None: ...

    @abc.abstractmethod
    async def _close(self) -> None: ...

    @abc.abstractmethod
    async def _join(self, topic: str) -> None: ...

    @abc.abstractmethod
    async def _leave(self, topic: str) -> None: ...

    @abc.abstractmethod
    async def _send_publish(self, topic: str, data: bytes) -> None: ...

    @abc.abstractmethod
    async def _send_request(self, peer: str, protocol: str, data: bytes, limit_s: float) -> bytes:
        """Return the response payload or raise RequestFailed (the caller enforces `limit_s`)."""

    @abc.abstractmethod
    async def wait_for_subscribers(self, topic: str, count: int) -> None: ...

    @property
    @abc.abstractmethod
    def peer_id(self) -> str: ...

    @property
    @abc.abstractmethod
    def listen_addrs(self) -> tuple[str, ...]: ...

    @property
    @abc.abstractmethod
    def traits(self) -> Traits: ...

    def _on_serve(self, protocol: str) -> None:  # noqa: B027 - an optional hook
        """Hook: a handler was registered (libp2p installs a stream handler)."""

    def recognize_members(self, members: Callable[[bytes], bool]) -> None:  # noqa: B027
        """Tell the transport which sender keys belong to registered members (a node calls
        it once it has its membership timeline), so that whatever bounded per-sender state
        the wire keeps can never be crowded out by unregistered keys. Transports that keep
        none (in-memory; libp2p, whose peers must hold a connection) need not listen."""

    def _fail(self, error: TransportError) -> None:
        """The implementation lost its network for good (see `wait_failed`)."""
        if self._failure is None:
            self._log.error("transport failed: %s", error)
            self._failure = error
            self._failed.set()

    # -- public interface -----------------------------------------------------------------

    async def wait_failed(self) -> None:
        """Return only to raise the error that ended this transport for good (a broker gone
        longer than its reconnect limit, a libp2p host that died): a node runs this beside
        its service, so that it exits instead of living on without a network."""
        await self._failed.wait()
        assert self._failure is not None
        raise self._failure

    @property
    def network_id(self) -> str:
        return self._network_id

    @property
    def limits(self) -> Limits:
        return self._limits

    @property
    def stats(self) -> TransportStats:
        return self._stats

    @property
    def running(self) -> bool:
        return self._state is _State.RUNNING

    async def start(self) -> None:
        """Connect / listen. Idempotent while running; a stopped transport cannot restart."""
        async with self._lifecycle:
            if self._state is _State.RUNNING:
                return
            if self._state is _State.STOPPED:
                raise TransportClosed("a stopped transport cannot be restarted")
            try:
                await self._open()
            except BaseException:
                self._state = _State.STOPPED
                try:
                    await self._close()
                except Exception:
                    self._log.exception("cleanup after a failed start failed too")
                raise
            self._state = _State.RUNNING

    async def stop(self) -> None:
        """Release every socket, task and subscription. Idempotent."""
        async with self._lifecycle:
            if self._state is _State.STOPPED:
                return
            was_running = self._state is _State.RUNNING
            self._state = _State.STOPPED
            for subscribers in self._subscribers.values():
                for subscription in subscribers:
                    subscription.end()
            self._subscribers.clear()
            if was_running:
                await self._close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def publish(self, topic: str, data: bytes) -> None:
        """Broadcast `data` on `topic` (see adapters.transport.base.Transport.publish)."""
        self._require_running()
        check_name(topic)
        self._check_outbound_size(data)
        await self._send_publish(topic, bytes(data))
        self._stats.published += 1
        self._stats.bytes_published += len(data)

    async def subscribe(self, topic: str) -> QueueSubscription:
        """Start receiving `topic`; returns once the subscription is in effect."""
        self._require_running()
        check_name(topic)
        subscription = QueueSubscription(
            topic, self._limits.subscription_capacity, self._stats, self._release
        )
        async with self._topic_lock(topic):
            subscribers = self._subscribers.setdefault(topic, [])
            subscribers.append(subscription)
            if len(subscribers) == 1:
                try:
                    await self._join(topic)
                except BaseException:
                    self._subscribers.pop(topic, None)
                    raise
        if not self.running:  # stopped while joining
            subscription.end()
            raise TransportClosed("transport stopped while subscribing")
        return subscription

    async def request(
        self,
        peer: str,
        protocol: str,
        data: bytes,
        *,
        timeout: float,  # noqa: ASYNC109 - mandatory: a direct request must never hang
    ) -> bytes:
        """Send `data` to `peer`'s handler for `protocol` and return the response."""
        self._require_running()
        check_name(protocol, "protocol")
        self._check_outbound_size(data)
        self._stats.requests_sent += 1
        try:
            return await asyncio.wait_for(
                self._send_request(peer, protocol, bytes(data), timeout), timeout
            )
        except TimeoutError:
            raise RequestTimeout(
                f"{protocol} request to {peer} timed out after {timeout}s"
            ) from None

    def serve(self, protocol: str, handler: Handler) -> None:
        """Answer direct requests for `protocol` (replaces an earlier handler)."""
        check_name(protocol, "protocol")
        self._handlers[protocol] = handler
        self._on_serve(protocol)

    # -- helpers for implementations ------------------------------------------------------

    def _deliver(self, topic: str, data: bytes, from_peer: str, forwarder: str = "") -> None:
        """Fan an inbound message out to this node's subscribers of `topic`; `forwarder` is the
        neighbour that handed it over (the publisher itself when empty)."""
        if len(data) > self._limits.max_message_bytes:
            self._stats.record_drop(
                DropReason.OVERSIZED_INBOUND,
                f"{len(data)} bytes on {topic!r} from {forwarder or from_peer}",
            )
            return
        subscribers = self._subscribers.get(topic)
        if not subscribers:
            return
        delivery = Delivery(topic, data, from_peer, forwarder or from_peer)
        self._stats.delivered += 1
        self._stats.bytes_delivered += len(data)
        for subscription in tuple(subscribers):
            subscription.offer(delivery)

    async def _answer(self, request: Request) -> tuple[ResponseStatus, bytes]:
        """Run the handler for an inbound request; every failure becomes a counted status."""
        if len(request.data) > self._limits.max_message_bytes:
            self._stats.record_drop(
                DropReason.OVERSIZED_INBOUND,
                f"{len(request.data)}-byte {request.protocol} request from {request.from_peer}",
            )
            return ResponseStatus.TOO_LARGE, b""
        handler = self._handlers.get(request.protocol)
        if handler is None:
            self._stats.record_drop(
                DropReason.UNKNOWN_PROTOCOL, f"{request.protocol} from {request.from_peer}"
            )
            return ResponseStatus.UNKNOWN_PROTOCOL, b""
        try:
            response = await handler(request)
        except Exception as exc:
            self._stats.record_drop(
                DropReason.HANDLER_ERROR, f"{request.protocol} handler raised {exc!r}"
            )
            return ResponseStatus.HANDLER_ERROR, b""
        if len(response) > self._limits.max_message_bytes:
            self._stats.record_drop(
                DropReason.OVERSIZED_RESPONSE,
                f"{len(response)}-byte {request.protocol} response to {request.from_peer}",
            )
            return ResponseStatus.TOO_LARGE, b""
        self._stats.requests_served += 1
        return ResponseStatus.OK, response

    def _check_outbound_size(self, data: bytes) -> None:
        if len(data) > self._limits.max_message_bytes:
            self._stats.rejected_outbound += 1
            raise PayloadTooLarge(len(data), self._limits.max_message_bytes)

    def _require_running(self) -> None:
        if self._state is not _State.RUNNING:
            raise TransportClosed(f"transport is {self._state.value}")

    def _topic_lock(self, topic: str) -> asyncio.Lock:
        return self._topic_locks.setdefault(topic, asyncio.Lock())

    async def _release(self, subscription: QueueSubscription) -> None:
        topic = subscription.topic
        async with self._topic_lock(topic):
            subscribers = self._subscribers.get(topic)
            if not subscribers or subscription not in subscribers:
                return
            subscribers.remove(subscription)
            if not subscribers:
                del self._subscribers[topic]
                if self.running:
                    await self._leave(topic)


def raise_for_status(status: ResponseStatus, peer: str, protocol: str) -> None:
    """Turn a non-OK response status into RequestFailed."""
    if status is not ResponseStatus.OK:
        raise RequestFailed(f"{protocol} request to {peer} failed: {status.name.lower()}")


async def poll_until(predicate: Callable[[], bool], *, interval: float = 0.01) -> None:
    """Wait until `predicate()` holds (unbounded: callers wrap it in asyncio.timeout)."""
    while not predicate():  # noqa: ASYNC110 - the state lives in a library with no events
        await asyncio.sleep(interval)
