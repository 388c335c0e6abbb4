"""libp2p specifics: identity, queue pacing, bootstrap failures, shutdown hygiene."""

from __future__ import annotations

import asyncio
import threading

import pytest

from adapters.transport.base import Limits
from adapters.transport.libp2p_host import Libp2pConfig
from adapters.transport.libp2p_transport import Libp2pTransport
from adapters.transport.stats import DropReason
from adapters.transport.trio_bridge import TrioBridge
from protocol.identity import NodeKey
from tests.transport.harness import seed_for

pytestmark = pytest.mark.network
NET = "libp2p-test"


def make(label: str, **config: object) -> Libp2pTransport:
    return Libp2pTransport(
        Libp2pConfig(key_seed=seed_for(label), **config),  # type: ignore[arg-type]
        network_id=NET,
        limits=Limits(),
    )


def test_peer_id_is_the_identity_peer_id_of_the_seed() -> None:
    async def scenario() -> None:
        seed = seed_for("identity")
        async with make("identity") as node, make("observer", bootstrap=()) as observer:
            assert node.peer_id == NodeKey.from_bytes(seed).peer_id
            assert all(addr.endswith(f"/p2p/{node.peer_id}") for addr in node.listen_addrs)
            assert all(addr.startswith("/ip4/127.0.0.1/tcp/") for addr in node.listen_addrs)
            await observer.connect(node.listen_addrs[0])
            assert node.peer_id in observer.connected_peers()
            subscription = await observer.subscribe("who")
            async with asyncio.timeout(10):
                await node.wait_for_subscribers("who", 1)
            await node.publish("who", b"hello")
            async with asyncio.timeout(10):
                delivery = await subscription.get()
            # authenticated by libp2p's message signature under the same key
            assert delivery.from_peer == NodeKey.from_bytes(seed).peer_id

    asyncio.run(scenario())


def test_publish_window_keeps_libp2p_default_queues_from_dropping() -> None:
    """py-libp2p's own queue size (32) with a window of 8: a 300-message burst loses nothing."""
    burst = 300

    async def scenario() -> None:
        async with make("w-recv", peer_queue_capacity=32, publish_window=8) as receiver:
            sender = make(
                "w-send",
                peer_queue_capacity=32,
                publish_window=8,
                bootstrap=receiver.listen_addrs,
            )
            async with sender:
                subscription = await receiver.subscribe("burst")
                await sender.subscribe("burst")
                async with asyncio.timeout(10):
                    await sender.wait_for_subscribers("burst", 1)
                for seq in range(burst):
                    await sender.publish("burst", seq.to_bytes(4, "big") + bytes(512))
                async with asyncio.timeout(30):
                    got = [await subscription.get() for _ in range(burst)]
                assert sorted(int.from_bytes(d.data[:4], "big") for d in got) == list(range(burst))
                assert sender.stats.dropped(DropReason.PEER_QUEUE_FULL) == 0

    asyncio.run(scenario())


def test_unreachable_bootstrap_peer_does_not_prevent_start() -> None:
    dead = f"/ip4/127.0.0.1/tcp/9/p2p/{NodeKey.from_bytes(seed_for('ghost')).peer_id}"

    async def scenario() -> None:
        async with make("lonely", bootstrap=(dead,), dial_timeout_s=3.0) as node:
            assert node.running
            assert node.connected_peers() == []

    asyncio.run(scenario())


def test_shutdown_ends_hosts_threads_and_the_trio_run() -> None:
    def libp2p_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if "_background_cleanup" in t.name]

    async def scenario() -> None:
        bridge = await TrioBridge.acquire()
        first = Libp2pTransport(
            Libp2pConfig(key_seed=seed_for("s1")), network_id=NET, bridge=bridge
        )
        await first.start()
        second = Libp2pTransport(
            Libp2pConfig(key_seed=seed_for("s2"), bootstrap=first.listen_addrs),
            network_id=NET,
            bridge=bridge,
        )
        await second.start()
        assert len(libp2p_threads()) == 2
        await asyncio.gather(first.stop(), second.stop())
        assert libp2p_threads() == []
        assert not bridge.finished  # the bridge belongs to this test, not to the transports
        await bridge.release()
        assert bridge.finished

    asyncio.run(scenario())
