"""kill -9 a miner in the middle of a round; restarted, it catches up by replay, hash for hash."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from protocol.rounds import Phase, RoundClock
from seedswarm.devnet.local_network import Devnet, all_at_round
from seedswarm.devnet.spec import DevnetSpec

pytestmark = [pytest.mark.e2e, pytest.mark.network, pytest.mark.chain, pytest.mark.timeout(600)]

ROUNDS = 10
VICTIM = "miner-1"


async def _until(when: float) -> None:
    """Until the wall clock reads `when` (the schedule is the wall clock's)."""
    await asyncio.sleep(max(0.0, when - time.time()))


async def _wait_for_mid_round(clock: RoundClock, round_index: int) -> None:
    """Until the middle of `round_index`'s work phase (the miner is computing or publishing)."""
    target = clock.round_start(round_index) + 0.3 * clock.round_length
    await _until(target)
    assert clock.phase(time.time()).phase is Phase.WORK


async def _crash_and_recover(devnet: Devnet) -> dict[str, dict[str, object]]:
    clock = RoundClock(devnet.genesis_time, devnet.schedule.round_length)
    await devnet.wait_until(all_at_round(2),
                            limit_s=devnet.spec.startup_s + 8 * clock.round_length,
                            what="round 2")
    # the next clock round's work phase (a loaded machine may have the network behind the clock)
    crash = max(3, clock.phase(time.time()).round_index + 1)
    await _wait_for_mid_round(clock, crash)
    victim = devnet.fleet.nodes[VICTIM]
    victim.kill()
    down_until = clock.round_start(crash + 2) + 0.1 * clock.round_length  # misses two rounds
    await _until(down_until)
    victim.status_file.unlink()  # only the restarted process may report from now on
    victim.start(devnet.fleet.env)
    limit = clock.round_end(ROUNDS) - time.time() + 6 * clock.round_length
    await devnet.wait_until(all_at_round(ROUNDS), limit_s=limit, what=f"round {ROUNDS}")
    return devnet.snapshot()


def test_killed_miner_catches_up_and_agrees(tmp_path: Path) -> None:
    spec = DevnetSpec(miners=3, validators=1, rounds=ROUNDS, transport="mqtt", chain="anvil",
                      workdir=tmp_path, startup_s=12)
    devnet = Devnet(spec)

    async def scenario() -> dict[str, dict[str, object]]:
        await devnet.start()
        try:
            return await _crash_and_recover(devnet)
        finally:
            await devnet.stop()

    snapshot = asyncio.run(scenario())
    hashes = {name: status["model_hash"] for name, status in snapshot.items()}
    assert len(set(hashes.values())) == 1, hashes
    victim = snapshot[VICTIM]
    assert victim["round"] == ROUNDS
    # the restarted process got the rounds it missed from its peers' logs, verified by hash
    assert isinstance(victim["caught_up_rounds"], int) and victim["caught_up_rounds"] >= 1
    assert isinstance(victim["published"], int) and victim["published"] >= 1
    assert devnet.fleet.nodes[VICTIM].starts == 2
