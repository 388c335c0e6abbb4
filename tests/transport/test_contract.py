"""The behaviour every transport implementation must show (in-memory, libp2p, MQTT x 2 brokers).

Each test runs one scenario against a fresh swarm of the parametrized implementation (see
conftest.make_harness). Waiting is bounded polling (`eventually`, `asyncio.timeout`), never a
fixed sleep, except for the short settle periods of the "nothing else arrives" checks.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections import Counter
from collections.abc import Coroutine, Sequence
from typing import Any

import pytest

from adapters.transport.base import (
    Delivery,
    Limits,
    PayloadTooLarge,
    Request,
    RequestFailed,
    Subscription,
    Transport,
    TransportClosed,
)
from adapters.transport.core import TransportCore
from adapters.transport.stats import DropReason
from adapters.transport.subscription import QueueSubscription
from tests.transport.conftest import HarnessFactory
from tests.transport.harness import eventually

COLLECT_LIMIT_S = 30.0
SETTLE_S = 0.3
_PAYLOAD = struct.Struct(">HI")


def run(scenario: Coroutine[Any, Any, None]) -> None:
    asyncio.run(scenario)


def payload(publisher: int, seq: int, size: int = 0) -> bytes:
    """Identifies (publisher, seq); padded with seq-dependent bytes up to `size`."""
    head = _PAYLOAD.pack(publisher, seq)
    return head + bytes((seq + i) % 251 for i in range(max(0, size - len(head))))


def parse(delivery: Delivery) -> tuple[int, int]:
    publisher, seq = _PAYLOAD.unpack_from(delivery.data)
    return publisher, seq


async def collect(subscription: QueueSubscription, count: int) -> list[Delivery]:
    """Exactly `count` deliveries (fails on timeout)."""
    async with asyncio.timeout(COLLECT_LIMIT_S):
        return [await subscription.get() for _ in range(count)]


async def settle_then_pending(subscription: QueueSubscription) -> int:
    """Deliveries that arrive after everything expected was consumed."""
    await asyncio.sleep(SETTLE_S)
    return subscription.pending()


async def subscribe_all(nodes: Sequence[TransportCore], topic: str) -> list[QueueSubscription]:
    return [await node.subscribe(topic) for node in nodes]


def as_transport(node: TransportCore) -> Transport:
    """Statically (mypy) and at run time: every implementation satisfies the interface."""
    assert isinstance(node, Transport)
    return node


def as_subscription(subscription: QueueSubscription) -> Subscription:
    assert isinstance(subscription, Subscription)
    return subscription


def test_fanout_delivers_each_message_exactly_once_to_every_subscription(
    make_harness: HarnessFactory,
) -> None:
    per_publisher = 20

    async def scenario() -> None:
        async with harness as nodes:
            for node in nodes:
                as_transport(node)
            subscriptions = await subscribe_all(nodes, "fanout")
            as_subscription(subscriptions[0])
            subscriptions.append(await nodes[1].subscribe("fanout"))  # two local subscribers
            await harness.ready("fanout", nodes)
            for seq in range(per_publisher):
                for index, node in enumerate(nodes):
                    await node.publish("fanout", payload(index, seq))
            expected = Counter((i, s) for i in range(len(nodes)) for s in range(per_publisher))
            for subscription in subscriptions:
                got = await collect(subscription, len(expected))
                assert Counter(parse(d) for d in got) == expected
                assert all(d.from_peer == nodes[parse(d)[0]].peer_id for d in got)
                assert all(d.topic == "fanout" for d in got)
                assert await settle_then_pending(subscription) == 0
            for node in nodes:
                assert node.stats.published == per_publisher
                assert node.stats.dropped() == 0

    harness = make_harness()
    run(scenario())


def test_burst_of_500_arrives_complete_and_in_order_where_guaranteed(
    make_harness: HarnessFactory,
) -> None:
    burst = 500

    async def scenario() -> None:
        async with harness as nodes:
            subscriptions = await subscribe_all(nodes, "burst")
            await harness.ready("burst", nodes)
            for seq in range(burst):
                await nodes[1].publish("burst", payload(1, seq, size=64 + seq % 1024))
            for node, subscription in zip(nodes, subscriptions, strict=True):
                got = await collect(subscription, burst)
                sequence = [parse(d)[1] for d in got]
                assert sorted(sequence) == list(range(burst))
                if node.traits.ordered_per_publisher:
                    assert sequence == list(range(burst))
                assert all(d.data == payload(1, parse(d)[1], 64 + parse(d)[1] % 1024) for d in got)
                assert await settle_then_pending(subscription) == 0
                assert node.stats.dropped() == 0

    harness = make_harness()
    run(scenario())


def test_request_response_and_its_failures(make_harness: HarnessFactory) -> None:
    async def echo(request: Request) -> bytes:
        return request.from_peer.encode() + b"|" + request.data[::-1]

    async def broken(request: Request) -> bytes:
        raise RuntimeError("handler bug")

    async def scenario() -> None:
        async with harness as nodes:
            server, *clients = nodes
            server.serve("echo/1", echo)
            server.serve("broken/1", broken)

            async def ask(client: TransportCore, index: int) -> None:
                data = f"question {index}".encode()
                answer = await client.request(server.peer_id, "echo/1", data, timeout=10)
                assert answer == client.peer_id.encode() + b"|" + data[::-1]

            await asyncio.gather(*(ask(c, i) for c in clients for i in range(20)))
            assert server.stats.requests_served == 20 * len(clients)

            with pytest.raises(RequestFailed):
                await clients[0].request(server.peer_id, "missing/1", b"x", timeout=10)
            # libp2p refuses an unserved protocol during stream negotiation, before any of
            # the server's code runs, so only the other transports can count it
            expected_unknown = 0 if harness.kind == "libp2p" else 1
            assert server.stats.dropped(DropReason.UNKNOWN_PROTOCOL) == expected_unknown
            with pytest.raises(RequestFailed):
                await clients[0].request(server.peer_id, "broken/1", b"x", timeout=10)
            assert server.stats.dropped(DropReason.HANDLER_ERROR) == 1
            # the server keeps answering after both failures
            await ask(clients[0], 99)

    harness = make_harness()
    run(scenario())


def test_request_to_unknown_peer_fails(make_harness: HarnessFactory) -> None:
    async def scenario() -> None:
        async with harness as nodes:
            ghost = "12D3KooWGhostGhostGhostGhostGhostGhostGhostGhostGhost"
            with pytest.raises(RequestFailed):
                await nodes[0].request(ghost, "echo/1", b"x", timeout=2)

    harness = make_harness()
    run(scenario())


def test_oversized_payloads_are_refused_and_counted(make_harness: HarnessFactory) -> None:
    small = Limits(max_message_bytes=64 * 1024)
    big = Limits(max_message_bytes=1 << 20)
    oversized = payload(0, 1, size=100 * 1024)

    async def echo(request: Request) -> bytes:
        return request.data

    async def scenario() -> None:
        async with harness as nodes:
            sender, *receivers = nodes
            subscriptions = await subscribe_all(nodes, "size")
            await harness.ready("size", nodes)

            with pytest.raises(PayloadTooLarge):
                await receivers[0].publish("size", oversized)
            assert receivers[0].stats.rejected_outbound == 1

            await sender.publish("size", oversized)
            own = await collect(subscriptions[0], 1)
            assert own[0].data == oversized
            await eventually(
                lambda: all(r.stats.dropped(DropReason.OVERSIZED_INBOUND) == 1 for r in receivers)
            )
            # the oversized message left every node working
            await sender.publish("size", payload(0, 2))
            for subscription in subscriptions:
                tail = await collect(subscription, 1)
                assert parse(tail[0]) == (0, 2)

            receivers[0].serve("echo/1", echo)
            with pytest.raises(RequestFailed):
                await sender.request(receivers[0].peer_id, "echo/1", oversized, timeout=10)
            assert receivers[0].stats.dropped(DropReason.OVERSIZED_INBOUND) == 2
            assert receivers[0].stats.requests_served == 0

    harness = make_harness(limits=[big, small, small])
    run(scenario())


def test_stop_is_clean_and_idempotent(make_harness: HarnessFactory) -> None:
    threads_before = _lasting_threads()

    async def scenario() -> None:
        async with harness as nodes:
            hub, survivor, victim = nodes
            doomed = await victim.subscribe("stop")
            await harness.ready("stop", [victim])
            await hub.publish("stop", payload(0, 0))
            await collect(doomed, 1)

            await victim.stop()
            await victim.stop()
            assert not victim.running
            with pytest.raises(StopAsyncIteration):
                await doomed.get()
            with pytest.raises(TransportClosed):
                await victim.publish("stop", b"x")
            with pytest.raises(TransportClosed):
                await victim.subscribe("stop")
            with pytest.raises(TransportClosed):
                await victim.request(hub.peer_id, "echo/1", b"x", timeout=1)
            with pytest.raises(TransportClosed):
                await victim.start()

            # the rest of the swarm carries on
            kept = await survivor.subscribe("after-stop")
            await harness.ready("after-stop", [survivor])
            await hub.publish("after-stop", payload(0, 1))
            assert parse((await collect(kept, 1))[0]) == (0, 1)
        for node in nodes:
            assert not node.running
            await node.stop()
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert leftover == []

    harness = make_harness()
    run(scenario())
    assert _lasting_threads() <= threads_before


def _lasting_threads() -> set[threading.Thread]:
    """Live threads, except trio's idle worker cache (its threads retire after 10 s idle)."""
    return {t for t in threading.enumerate() if not t.name.startswith("Trio thread")}


def test_late_subscriber_receives_what_is_published_after_it_joined(
    make_harness: HarnessFactory,
) -> None:
    early, late = 10, 10

    async def scenario() -> None:
        async with harness as nodes:
            first = await subscribe_all(nodes[:2], "late")
            await harness.ready("late", nodes[:2])
            for seq in range(early):
                await nodes[0].publish("late", payload(0, seq))
            newcomer = await nodes[2].subscribe("late")
            await harness.ready("late", nodes)
            for seq in range(early, early + late):
                await nodes[0].publish("late", payload(0, seq))

            for subscription in first:
                got = await collect(subscription, early + late)
                assert sorted(parse(d)[1] for d in got) == list(range(early + late))
            received: list[int] = []

            def has_all_late() -> bool:
                while newcomer.pending():
                    received.append(parse(newcomer._items.popleft())[1])
                return set(range(early, early + late)) <= set(received)

            await eventually(has_all_late)
            await asyncio.sleep(SETTLE_S)
            has_all_late()
            assert len(received) == len(set(received)), "duplicate delivery"
            if not nodes[2].traits.may_replay_recent:
                assert sorted(received) == list(range(early, early + late))

    harness = make_harness()
    run(scenario())


def test_topics_and_networks_are_isolated(make_harness: HarnessFactory) -> None:
    async def scenario() -> None:
        async with harness as nodes:
            hub = nodes[0]
            on_a = await nodes[1].subscribe("alpha")
            on_b = await nodes[2].subscribe("beta")
            stranger = await harness.add_node("other-net")
            on_other = await stranger.subscribe("alpha")
            await harness.ready("alpha", [nodes[1]])
            await harness.ready("beta", [nodes[2]])

            for seq in range(5):
                await hub.publish("alpha", payload(0, seq))
                await hub.publish("beta", payload(0, 100 + seq))
                await stranger.publish("alpha", payload(9, seq))
            assert sorted(parse(d)[1] for d in await collect(on_a, 5)) == list(range(5))
            assert sorted(parse(d)[1] for d in await collect(on_b, 5)) == list(range(100, 105))
            own = await collect(on_other, 5)
            assert {parse(d)[0] for d in own} == {9}
            assert await settle_then_pending(on_a) == 0
            assert await settle_then_pending(on_b) == 0
            assert await settle_then_pending(on_other) == 0

    harness = make_harness()
    run(scenario())


def test_slow_subscriber_overflow_is_counted_not_silent(make_harness: HarnessFactory) -> None:
    tight = Limits(subscription_capacity=16)
    sent = 100

    async def scenario() -> None:
        async with harness as nodes:
            subscriptions = await subscribe_all(nodes, "slow")
            await harness.ready("slow", nodes)
            for seq in range(sent):
                await nodes[0].publish("slow", payload(0, seq))
            fast = subscriptions[0]
            assert len(await collect(fast, sent)) == sent
            slow_node, slow = nodes[1], subscriptions[1]
            await eventually(
                lambda: (
                    slow.pending() + slow_node.stats.dropped(DropReason.SUBSCRIBER_OVERFLOW) == sent
                )
            )
            assert slow.pending() == 16
            assert slow_node.stats.dropped(DropReason.SUBSCRIBER_OVERFLOW) == sent - 16
            # it keeps working once drained
            await collect(slow, 16)
            await nodes[0].publish("slow", payload(0, sent))
            assert parse((await collect(slow, 1))[0]) == (0, sent)

    harness = make_harness(limits=[Limits(), tight, Limits()])
    run(scenario())
