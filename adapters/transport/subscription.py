"""A bounded, count-on-overflow queue of deliveries for one local subscriber."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from adapters.transport.base import Delivery
from adapters.transport.stats import DropReason, TransportStats


class QueueSubscription:
    """Deliveries for one subscriber, held in a queue of fixed capacity.

    The network side must never block on a slow consumer (that would stall every other topic
    on the same connection), so a full queue drops the newest delivery, counted as
    SUBSCRIBER_OVERFLOW and logged, never silently.
    """

    def __init__(
        self,
        topic: str,
        capacity: int,
        stats: TransportStats,
        on_close: Callable[[QueueSubscription], Awaitable[None]],
    ) -> None:
        self._topic = topic
        self._capacity = capacity
        self._stats = stats
        self._on_close = on_close
        self._items: deque[Delivery] = deque()
        self._ready = asyncio.Event()
        self._ended = False
        self._closed = False

    @property
    def topic(self) -> str:
        return self._topic

    def offer(self, delivery: Delivery) -> bool:
        """Queue a delivery; False (and counted) if the subscriber is full or gone."""
        if self._ended:
            return False
        if len(self._items) >= self._capacity:
            self._stats.record_drop(
                DropReason.SUBSCRIBER_OVERFLOW,
                f"topic {self._topic!r}: subscriber holds {self._capacity} unread messages",
            )
            return False
        self._items.append(delivery)
        self._ready.set()
        return True

    def end(self) -> None:
        """No more deliveries will come; consumers drain what is queued, then stop."""
        self._ended = True
        self._ready.set()

    def pending(self) -> int:
        return len(self._items)

    def __aiter__(self) -> QueueSubscription:
        return self

    async def __anext__(self) -> Delivery:
        while not self._items:
            if self._ended:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    async def get(self) -> Delivery:
        """The next delivery; StopAsyncIteration once ended (bound it with asyncio.timeout)."""
        return await self.__anext__()

    async def close(self) -> None:
        """Unsubscribe; anything still queued is discarded."""
        if self._closed:
            return
        self._closed = True
        self._items.clear()
        self.end()
        await self._on_close(self)

    async def __aenter__(self) -> QueueSubscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
