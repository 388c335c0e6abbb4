"""A peer that sends garbage, oversized and replayed messages, then floods: it is refused with
reasons, banned, and the rounds still certify with every honest miner included."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from adapters.transport.base import Limits
from adapters.transport.mqtt import MqttConfig, MqttTransport
from protocol.identity import NodeKey
from protocol.roundlog import TOPIC_BUNDLES, TOPIC_CONTRIBUTIONS
from seedswarm.devnet.local_network import Devnet, Snapshot, all_at_round
from seedswarm.devnet.spec import DevnetSpec

pytestmark = [pytest.mark.e2e, pytest.mark.network, pytest.mark.chain, pytest.mark.timeout(600)]

ROUNDS = 6
FLOOD = 300


def _validator(snapshot: Snapshot) -> dict[str, object]:
    return next(s for name, s in snapshot.items() if name.startswith("validator"))


def _refused(snapshot: Snapshot, reason: str) -> int:
    gate = _validator(snapshot).get("gate", {})
    assert isinstance(gate, dict)
    return int(gate.get(f"refused_{reason}", 0))


def _bans(snapshot: Snapshot) -> int:
    gate = _validator(snapshot).get("gate", {})
    assert isinstance(gate, dict)
    return int(gate.get("bans", 0))


async def _attack(devnet: Devnet) -> None:
    assert devnet.network is not None and devnet.broker is not None
    attacker = MqttTransport(
        MqttConfig(port=devnet.broker.port), key=NodeKey.generate(),
        network_id=devnet.network.network_id, limits=Limits(max_message_bytes=1 << 20),
    )
    rounds = devnet.schedule.round_length  # every wait is counted in rounds
    async with attacker:
        seen = await attacker.subscribe(TOPIC_CONTRIBUTIONS)
        await devnet.wait_until(all_at_round(1), limit_s=devnet.spec.startup_s + 6 * rounds,
                                what="round 1")
        honest = await asyncio.wait_for(seen.get(), timeout=3 * rounds)
        await attacker.publish(TOPIC_CONTRIBUTIONS, b"\x01garbage that is no envelope")
        await attacker.publish(TOPIC_CONTRIBUTIONS, b"\x01" + bytes(200_000))  # oversized
        await attacker.publish(TOPIC_BUNDLES, b"not a bundle")
        for _ in range(3):  # replays of a genuine, correctly signed contribution
            await attacker.publish(TOPIC_CONTRIBUTIONS, honest.data)
        await devnet.wait_until(
            lambda s: _refused(s, "malformed") >= 1 and _refused(s, "oversized") >= 1
            and _refused(s, "duplicate") + _refused(s, "wrong_round") >= 1,
            limit_s=3 * rounds, what="the first refusals",
        )
        for index in range(FLOOD):
            await attacker.publish(TOPIC_CONTRIBUTIONS, b"flood %d" % index)
        await devnet.wait_until(lambda s: _bans(s) >= 1, limit_s=3 * rounds, what="a ban")


def test_hostile_peer_is_refused_and_rounds_certify(tmp_path: Path) -> None:
    spec = DevnetSpec(miners=3, validators=1, rounds=ROUNDS, transport="mqtt", chain="anvil",
                      workdir=tmp_path, startup_s=12)
    devnet = Devnet(spec)

    async def scenario() -> Snapshot:
        await devnet.start()
        try:
            await _attack(devnet)
            await devnet.wait_until(all_at_round(ROUNDS),
                                    limit_s=(ROUNDS + 6) * devnet.schedule.round_length,
                                    what=f"round {ROUNDS}")
            return devnet.snapshot()
        finally:
            with contextlib.suppress(Exception):
                await devnet.stop()

    snapshot = asyncio.run(scenario())
    assert len({s["model_hash"] for s in snapshot.values()}) == 1
    assert _refused(snapshot, "malformed") >= 1
    assert _refused(snapshot, "oversized") >= 1
    assert _refused(snapshot, "duplicate") + _refused(snapshot, "wrong_round") >= 1
    assert _refused(snapshot, "banned") + _refused(snapshot, "rate_limited") >= 1
    for name, status in snapshot.items():
        if name.startswith("miner"):  # the fake bundle was refused by every miner too
            gate = status["gate"]
            assert isinstance(gate, dict)
            assert sum(v for k, v in gate.items() if k.startswith("refused_")) >= 1
    ledger = _validator(snapshot)["ledger"]
    assert isinstance(ledger, dict)
    scores = ledger["epochs"]["0"]["scores"]
    assert len(scores) == 3 and all(v > 0 for v in scores.values())  # honest miners included
