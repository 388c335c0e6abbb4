"""libp2p under hostile input: malformed gossip is refused and counted, never fatal; a host
that dies anyway ends its transport loudly (wait_failed) instead of leaving a zombie."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Coroutine
from typing import Any

import pytest

from adapters.transport.base import Limits, TransportError
from adapters.transport.libp2p_host import Libp2pConfig
from adapters.transport.libp2p_transport import Libp2pTransport
from adapters.transport.stats import DropReason
from tests.transport.harness import eventually, seed_for
from tests.transport.hostile_libp2p import (
    gossip_topic,
    send_raw,
    undecodable_key_message,
    unsigned_message,
)

pytestmark = pytest.mark.network
NET = "libp2p-hostile"
LIMIT_S = 20.0


def make(label: str) -> Libp2pTransport:
    return Libp2pTransport(Libp2pConfig(key_seed=seed_for(label)), network_id=NET,
                           limits=Limits())


async def _meshed(a: Libp2pTransport, b: Libp2pTransport, topic: str) -> None:
    await a.connect(b.listen_addrs[0])
    async with asyncio.timeout(LIMIT_S):
        await a.wait_for_subscribers(topic, 1)
        await b.wait_for_subscribers(topic, 1)


def test_undecodable_signing_key_is_refused_and_the_node_keeps_serving() -> None:
    """Issue 15 (4): one message whose `from` is a sha256 multihash and whose `key` is no
    public key used to cancel the victim's whole pubsub service and take its host down."""

    async def scenario() -> None:
        async with make("h-victim") as victim, make("h-attacker") as attacker, \
                make("h-honest") as honest:
            inbox = await victim.subscribe("t")
            await attacker.subscribe("t")
            await honest.subscribe("t")
            await _meshed(attacker, victim, "t")
            await _meshed(honest, victim, "t")
            failed = asyncio.create_task(victim.wait_failed())
            bad = undecodable_key_message(gossip_topic(victim, "t"), b"poison")
            await send_raw(attacker, victim.peer_id, bad)
            await eventually(lambda: victim.stats.dropped(DropReason.MALFORMED) >= 1,
                             limit_s=LIMIT_S)
            # still alive: it receives, publishes and stays connected
            await honest.publish("t", b"after the poison")
            async with asyncio.timeout(LIMIT_S):
                delivery = await inbox.get()
            assert delivery.data == b"after the poison"
            assert delivery.from_peer == honest.peer_id
            await victim.publish("t", b"still here")
            assert attacker.peer_id in victim.connected_peers()
            assert not failed.done()
            failed.cancel()

    asyncio.run(_bounded(scenario()))


def test_unsigned_and_forged_messages_are_refused_and_counted() -> None:
    """py-libp2p drops a message whose signature is missing or wrong with no trace: each must
    be refused and counted against the peer that sent it (seen live from a js-libp2p peer,
    tests/interop)."""

    async def scenario() -> None:
        async with make("s-victim") as victim, make("s-attacker") as attacker:
            inbox = await victim.subscribe("t")
            await attacker.subscribe("t")
            await _meshed(attacker, victim, "t")
            topic = gossip_topic(victim, "t")
            await send_raw(attacker, victim.peer_id, unsigned_message(attacker, topic, b"bare"),
                           unsigned_message(attacker, topic, b"forged", b"\x02" * 64))
            await eventually(lambda: victim.stats.dropped(DropReason.BAD_SIGNATURE) == 2,
                             limit_s=LIMIT_S)
            await attacker.publish("t", b"signed")  # a signed one is still delivered
            async with asyncio.timeout(LIMIT_S):
                assert (await inbox.get()).data == b"signed"
            assert inbox.pending() == 0
            assert victim.stats.dropped(DropReason.MALFORMED) == 0

    asyncio.run(_bounded(scenario()))


def test_a_host_that_dies_fails_its_transport_and_spares_its_neighbours() -> None:
    """An exception that escapes py-libp2p's own services ends the host: the transport reports
    it through wait_failed (the node exits non-zero) and other hosts on the bridge live on."""

    async def scenario() -> None:
        async with make("d-victim") as victim, make("d-other") as other:

            async def explode() -> None:
                raise RuntimeError("a bug inside py-libp2p")

            pubsub = victim._node._pubsub  # the test breaks the host from inside
            assert pubsub is not None
            await victim._require_bridge().call(_run_in_service, pubsub, explode)
            async with asyncio.timeout(LIMIT_S):
                with pytest.raises(TransportError, match="libp2p host"):
                    await victim.wait_failed()
            inbox = await other.subscribe("alive")
            await other.publish("alive", b"yes")
            async with asyncio.timeout(LIMIT_S):
                assert (await inbox.get()).data == b"yes"

    asyncio.run(_bounded(scenario()))


async def _bounded(scenario: Coroutine[Any, Any, None]) -> None:
    """A dead host used to hang every later call (its stop included): fail instead."""
    async with asyncio.timeout(3 * LIMIT_S):
        await scenario


async def _run_in_service(pubsub: object, fn: object) -> None:
    pubsub.manager.run_task(fn)  # type: ignore[attr-defined]


def test_gossip_ids_are_the_hash_of_the_data_in_seen_and_message_caches() -> None:
    """Issue 15 (6): the same bytes are one message whoever publishes them (py-libp2p's own
    ids are peer id + seqno, so each publisher's copy used to be delivered again)."""

    async def scenario() -> None:
        async with make("c-receiver") as receiver, make("c-one") as one, \
                make("c-two") as two:
            inbox = await receiver.subscribe("t")
            for sender in (one, two):
                await sender.subscribe("t")
                await _meshed(sender, receiver, "t")
            await one.publish("t", b"one envelope")
            await two.publish("t", b"one envelope")  # e.g. relayed under another identity
            await two.publish("t", b"then another")
            async with asyncio.timeout(LIMIT_S):
                first, second = await inbox.get(), await inbox.get()
            assert (first.data, second.data) == (b"one envelope", b"then another")
            assert inbox.pending() == 0
            # IHAVE advertises what IWANT can fetch: both caches use the same id
            gossipsub = one._node._gossipsub
            assert gossipsub is not None
            assert hashlib.sha256(b"one envelope").digest() in gossipsub.mcache.msgs

    asyncio.run(_bounded(scenario()))
