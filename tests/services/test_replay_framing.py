"""Issue 15 (5): a third party replays a miner's own signed contributions over libp2p once the
swarm has forgotten them; the validator must never ban the miner for it.

py-libp2p forgets a message id after ~120 s (its seen-message cache): sent again after that,
the miner's original gossip frame, still signed by the miner, arrives again. Here the
attacker captures the miner's real frames off the mesh and sends them again on a raw
gossipsub stream; the victim's seen-cache is cleared to stand in for the 120 s.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from libp2p.pubsub.pb import rpc_pb2

from adapters.transport.base import Limits
from adapters.transport.libp2p_host import Libp2pConfig
from adapters.transport.libp2p_transport import Libp2pTransport
from protocol.domain_types import ModelHash
from protocol.identity import NodeKey
from protocol.messages import Contribution
from protocol.roundlog import TOPIC_CONTRIBUTIONS
from protocol.signing import seal
from runtime.peergate import GatePolicy, PeerGate
from runtime.service_shell import Waker
from tests.transport.harness import eventually, seed_for
from tests.transport.hostile_libp2p import forget_seen, send_raw
from validator.service.pool import ContributionPool
from validator.service.validator import ValidatorService

pytestmark = pytest.mark.network
NET = "replay-net"
PREV = b"\x07" * 32
LIMIT_S = 20.0
ROUNDS = 4
MINER = NodeKey.from_bytes(seed_for("replayed-miner"))


def _contribution(round_index: int) -> bytes:
    message = Contribution(
        network_id=NET, round_index=round_index, sender=MINER.public.raw,
        sequence=round_index + 1, base_model_hash=ModelHash(PREV), codec="zo", direction="gaussian",
        rank=1, block_counts=(), scale=1.0, codes=b"\x01\x02", compute_ms=1,
    )
    return seal(message, MINER)


def _transport(seed: bytes) -> Libp2pTransport:
    return Libp2pTransport(Libp2pConfig(key_seed=seed), network_id=NET, limits=Limits())


def test_replaying_a_miners_messages_gets_nobody_banned_but_costs_the_replayer() -> None:
    async def scenario() -> None:
        # a low ban threshold: before the fix, ROUNDS replays banned the miner
        gate = PeerGate(GatePolicy(max_invalid=2, rate_per_s=1.0, burst=ROUNDS + 1.0))
        pool = ContributionPool(NET, [MINER.public.raw], 1 << 16, gate)
        clock = {"now": 0.0}
        # the validator's own receiving loop, on a stand-in for the rest of the service
        validator = SimpleNamespace(engine=SimpleNamespace(round_index=0), pool=pool,
                                    now=lambda: clock["now"], _waker=Waker())
        miner = _transport(MINER.to_bytes())
        victim = _transport(seed_for("replay-validator"))
        attacker = _transport(seed_for("replayer"))
        captured: list[rpc_pb2.Message] = []
        attacker._node._accept = lambda _topic, message, *_: captured.append(message)
        async with miner, victim, attacker:
            inbox = await victim.subscribe(TOPIC_CONTRIBUTIONS)
            await attacker.subscribe(TOPIC_CONTRIBUTIONS)
            await miner.subscribe(TOPIC_CONTRIBUTIONS)
            await miner.connect(victim.listen_addrs[0])
            await miner.connect(attacker.listen_addrs[0])
            await attacker.connect(victim.listen_addrs[0])
            async with asyncio.timeout(LIMIT_S):
                await miner.wait_for_subscribers(TOPIC_CONTRIBUTIONS, 2)
            receiving = asyncio.create_task(
                ValidatorService._receive_contributions(validator, inbox))  # type: ignore[arg-type]
            for r in range(ROUNDS):  # the honest rounds: each contribution kept
                validator.engine.round_index = r
                clock["now"] = float(r)
                await miner.publish(TOPIC_CONTRIBUTIONS, _contribution(r))
                await eventually(lambda r=r: r in pool.rounds, limit_s=LIMIT_S)
                await eventually(lambda r=r: len(captured) > r, limit_s=LIMIT_S)

            # rounds later, the swarm has forgotten them: the attacker sends them again
            validator.engine.round_index = ROUNDS + 2
            clock["now"] = float(ROUNDS + 2)
            forget_seen(victim)
            received = pool.received
            await send_raw(attacker, victim.peer_id, *captured)
            await eventually(lambda: pool.received >= received + ROUNDS, limit_s=LIMIT_S)

            assert not gate.is_banned(MINER.peer_id, clock["now"])
            assert not gate.is_banned(attacker.peer_id, clock["now"])  # a relay does this too
            assert gate.refused_by(attacker.peer_id)["wrong_round"] == ROUNDS
            assert "wrong_round" not in gate.refused_by(MINER.peer_id)
            # the miner's fresh work still gets in
            fresh = ROUNDS + 2
            await miner.publish(TOPIC_CONTRIBUTIONS, _contribution(fresh))
            await eventually(lambda: fresh in pool.rounds, limit_s=LIMIT_S)
            # and the replayer pays from its own rate budget, not the miner's
            forget_seen(victim)
            await send_raw(attacker, victim.peer_id, *captured)
            await eventually(lambda: pool.refused["rate_limited"] >= 1, limit_s=LIMIT_S)
            assert "rate_limited" not in gate.refused_by(MINER.peer_id)
            receiving.cancel()

    asyncio.run(scenario())
