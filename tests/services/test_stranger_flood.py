"""Issue 15, defect 2 at the node: peer ids cost nothing, so strangers get one budget.

A validator's inbox (peer gate + contribution pool) is flooded over the in-memory transport
with thousands of signed contributions, each from a fresh key and peer. Registered members
must be unaffected: an honest miner's contribution is kept, and a miner banned for invalid
messages stays banned (before the fix, 4096 fresh peers pushed its record out of the gate's
table, lifting the ban, and every fresh peer came with a full burst of its own).
"""

from __future__ import annotations

import asyncio

from adapters.transport.memory import MemoryNetwork, MemoryTransport
from protocol.domain_types import ModelHash, Wei
from protocol.identity import NodeKey
from protocol.membership import Membership, MembershipTimeline
from protocol.messages import Contribution
from protocol.signing import seal
from runtime.peergate import (
    BANNED,
    STRANGERS_OVER_BUDGET,
    GatePolicy,
    PeerGate,
    member_peers,
)
from validator.service.pool import ContributionPool

NET = "flood-pool-net"
TOPIC = "contributions"
PREV = ModelHash(b"\x07" * 32)
FLOOD = 5000
"""More fresh peers than the gate's old shared table (4096) held."""


def contribution(key: NodeKey, round_index: int = 0) -> bytes:
    message = Contribution(
        network_id=NET, round_index=round_index, sender=key.public.raw, sequence=1,
        base_model_hash=PREV, codec="zo", direction="gaussian", rank=1, block_counts=(),
        scale=1.0, codes=b"\x01\x02", compute_ms=1,
    )
    return seal(message, key)


def test_a_flood_of_fresh_peers_neither_crowds_out_members_nor_lifts_a_ban() -> None:
    honest, cheat, validator = (NodeKey.from_bytes(bytes([90 + i]) * 32) for i in range(3))
    timeline = MembershipTimeline.constant(Membership.of(
        [honest.public.raw, cheat.public.raw], [(validator.public.raw, Wei(1))]))
    policy = GatePolicy()
    gate = PeerGate(policy, members=member_peers(timeline))
    pool = ContributionPool(NET, timeline, 1 << 16, gate)
    clock = [1000.0]

    async def scenario() -> None:
        medium = MemoryNetwork()
        victim = MemoryTransport(medium, validator.peer_id, network_id=NET)
        async with victim:
            inbox = await victim.subscribe(TOPIC)
            kept: list[bool] = []

            async def consume() -> None:
                while True:
                    delivery = await inbox.get()
                    kept.append(pool.receive(delivery.data, delivery.from_peer,
                                             current_round=0, now=clock[0]))

            consumer = asyncio.create_task(consume())

            async def send(key: NodeKey, data: bytes) -> None:
                async with MemoryTransport(medium, key.peer_id, network_id=NET) as sender:
                    await sender.publish(TOPIC, data)
                await asyncio.sleep(0)

            for _ in range(policy.max_invalid):  # the cheat earns a ban
                await send(cheat, b"not an envelope")
            assert gate.is_banned(cheat.peer_id, clock[0])
            for _ in range(FLOOD):  # 5000 signed contributions from fresh keys in 5 s
                clock[0] += 0.001
                await send(NodeKey.generate(), contribution(NodeKey.generate()))
            await send(honest, contribution(honest))
            await send(cheat, contribution(cheat))
            assert len(kept) == policy.max_invalid + FLOOD + 2  # every delivery was judged
            consumer.cancel()
        assert victim.stats.dropped() == 0

    asyncio.run(scenario())
    assert honest.public.raw in pool.rounds[0]
    assert cheat.public.raw not in pool.rounds[0]
    assert gate.is_banned(cheat.peer_id, clock[0])
    assert pool.refused[BANNED] == 1
    # the flood was paid for out of one small budget: at most that many were even opened
    examined = FLOOD - pool.refused[STRANGERS_OVER_BUDGET]
    assert examined <= policy.stranger_burst + 5 * policy.stranger_rate_per_s + 1
    assert pool.refused["unknown_sender"] == examined
    assert gate.num_strangers <= policy.max_strangers
    assert gate.num_members == 2


def test_member_peers_follows_the_timeline() -> None:
    first, later, validator = (NodeKey.from_bytes(bytes([110 + i]) * 32) for i in range(3))
    timeline = MembershipTimeline.constant(
        Membership.of([first.public.raw], [(validator.public.raw, Wei(1))]))
    known = member_peers(timeline)
    assert known(first.peer_id) and known(validator.peer_id)
    assert not known(later.peer_id)
    timeline.set(8, Membership.of([later.public.raw], [(validator.public.raw, Wei(1))]))
    assert known(later.peer_id)
