"""Local subscription queues and drop accounting."""

from __future__ import annotations

import asyncio
import logging

import pytest

from adapters.transport.base import Delivery
from adapters.transport.stats import DropReason, TransportStats
from adapters.transport.subscription import QueueSubscription


def make(capacity: int, stats: TransportStats) -> tuple[QueueSubscription, list[QueueSubscription]]:
    closed: list[QueueSubscription] = []

    async def on_close(subscription: QueueSubscription) -> None:
        closed.append(subscription)

    return QueueSubscription("t", capacity, stats, on_close), closed


def delivery(index: int) -> Delivery:
    return Delivery("t", index.to_bytes(2, "big"), "peer")


def test_overflow_drops_newest_and_counts_each_drop() -> None:
    async def scenario() -> None:
        stats = TransportStats(logging.getLogger("test"))
        subscription, _ = make(3, stats)
        accepted = [subscription.offer(delivery(i)) for i in range(5)]
        assert accepted == [True, True, True, False, False]
        assert stats.dropped(DropReason.SUBSCRIBER_OVERFLOW) == 2
        assert [await subscription.get() for _ in range(3)] == [delivery(i) for i in range(3)]
        assert subscription.offer(delivery(9))
        assert await subscription.get() == delivery(9)

    asyncio.run(scenario())


def test_end_lets_consumers_drain_then_stops_iteration() -> None:
    async def scenario() -> None:
        subscription, _ = make(10, TransportStats(logging.getLogger("test")))
        subscription.offer(delivery(1))
        waiter = asyncio.create_task(anext_all(subscription))
        await asyncio.sleep(0)
        subscription.offer(delivery(2))
        subscription.end()
        assert await waiter == [delivery(1), delivery(2)]
        assert not subscription.offer(delivery(3))

    async def anext_all(subscription: QueueSubscription) -> list[Delivery]:
        return [item async for item in subscription]

    asyncio.run(scenario())


def test_close_discards_queue_and_notifies_owner_once() -> None:
    async def scenario() -> None:
        subscription, closed = make(10, TransportStats(logging.getLogger("test")))
        subscription.offer(delivery(1))
        async with subscription:
            pass
        await subscription.close()
        assert closed == [subscription]
        assert subscription.pending() == 0
        with pytest.raises(StopAsyncIteration):
            await subscription.get()

    asyncio.run(scenario())


def test_drop_logging_is_throttled_but_counting_is_not(caplog: pytest.LogCaptureFixture) -> None:
    stats = TransportStats(logging.getLogger("test.stats"))
    with caplog.at_level(logging.WARNING, logger="test.stats"):
        for _ in range(2500):
            stats.record_drop(DropReason.MALFORMED, "junk")
    assert stats.dropped(DropReason.MALFORMED) == 2500
    assert stats.snapshot()["dropped_malformed"] == 2500
    assert len(caplog.records) == 10 + 2  # the first ten, then #1000 and #2000
    assert "malformed" in caplog.records[0].getMessage()
