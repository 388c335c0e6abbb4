"""The live copycat: it hears contributions on the gossip, re-signs the freshest one of the
round late in the work window, free-rides when it heard nothing, and the live validator never
pays it. The tap and the copier are tested on their own (fake clock), then two honest miners,
a copycat and a validator run through the real services over the in-memory transport."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest

from node.service.miner import MinerConfig, MinerService
from node.service.produce import MinerProduce
from protocol.messages import Contribution
from protocol.netconfig import NetworkConfig
from protocol.rounds import RoundClock
from protocol.signing import open_envelope, seal
from runtime.model_state import ModelState
from seedswarm.devnet.attack_miners import LIVE_ATTACKS, copycat_tap, live_miner
from seedswarm.devnet.copycat import COPYCAT_STATUS, ContributionTap, LiveCopycat
from seedswarm.devnet.devnet_genesis import network_config
from seedswarm.devnet.spec import DevnetSpec
from seedswarm.sim.attackers import NoiseMiner
from tests.services.harness import key as _key
from tests.services.harness import (
    limit_s,
    measured_network,
    run_until_round,
    start_time,
    transports,
)
from training.round_context import RoundContext
from training.work import WorkConfig
from validator.scorer_store import scoring_certifier
from validator.service.engine import ScoringEngine
from validator.service.validator import ValidatorConfig, ValidatorService

ROUNDS = 3


HONEST = [_key("copycat-test-honest-0"), _key("copycat-test-honest-1")]
COPYCAT = _key("copycat-test-copycat")
LEADER = _key("copycat-test-validator")
KEYS = tuple(k.public.raw for k in [*HONEST, COPYCAT])


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[NetworkConfig, Path]:
    tmp = tmp_path_factory.mktemp("copycat")
    spec = DevnetSpec(miners=3, validators=1, rounds=ROUNDS)
    base = tmp / "base.safetensors"
    return measured_network(spec, base), base


def _context(network: NetworkConfig, base: Path) -> RoundContext:
    state = ModelState.from_base(network, base)
    return state.round_context(KEYS, WorkConfig.of(network))


class FakeTime:
    def __init__(self, now: float) -> None:
        self.t = now
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def test_tap_keeps_the_freshest_valid_contribution_of_another_miner(
    setup: tuple[NetworkConfig, Path],
) -> None:
    network, base = setup
    ctx = _context(network, base)
    tap = ContributionTap(COPYCAT.public.raw)
    first, second = (NoiseMiner(k).work(ctx) for k in HONEST)
    own = NoiseMiner(COPYCAT).work(ctx)
    other_model = open_envelope(first, network_id=ctx.network_id, expect=Contribution).message
    stale = seal(replace(other_model, base_model_hash=bytes(32), sequence=9), HONEST[0])
    assert tap.freshest(ctx.round_index, ctx.base_model_hash, KEYS) is None
    assert tap.offer(first, ctx.network_id) and tap.offer(second, ctx.network_id)
    assert not tap.offer(own, ctx.network_id)  # never copies itself
    assert not tap.offer(b"junk", ctx.network_id)
    assert not tap.offer(first, "another-network")
    assert tap.offer(stale, ctx.network_id)  # kept, but it is on another model

    found = tap.freshest(ctx.round_index, ctx.base_model_hash, KEYS)
    assert found is not None and found.envelope == second
    only_first = tap.freshest(ctx.round_index, ctx.base_model_hash, (HONEST[0].public.raw,))
    assert only_first is not None and only_first.envelope == first
    assert tap.freshest(ctx.round_index + 1, ctx.base_model_hash, KEYS) is None
    assert tap.snapshot() == {"heard": 6, "invalid": 2}


def test_copycat_resigns_the_freshest_late_in_the_window(
    setup: tuple[NetworkConfig, Path], tmp_path: Path,
) -> None:
    network, base = setup
    ctx = _context(network, base)
    clock = FakeTime(1000.0)
    copycat = LiveCopycat(COPYCAT, now=clock.now, sleep=clock.sleep)
    schedule = RoundClock(genesis_time=999.9, round_length=2.0, work_fraction=0.6)
    tap = copycat.attach(schedule, tmp_path / COPYCAT_STATUS)
    victim_raw = NoiseMiner(HONEST[1]).work(ctx)
    assert tap.offer(victim_raw, ctx.network_id)

    raw = copycat.work(ctx)
    # copies 20 % of the 1.2 s work window before the deadline at 1001.1
    assert clock.slept == [pytest.approx(1001.1 - 0.24 - 1000.0)]
    copy = open_envelope(raw, network_id=ctx.network_id, expect=Contribution).message
    victim = open_envelope(victim_raw, network_id=ctx.network_id, expect=Contribution)
    assert copy.sender == COPYCAT.public.raw and copy.sequence == copycat.sequence > 0
    assert replace(copy, sender=victim.message.sender, sequence=victim.message.sequence) == (
        victim.message)
    status = json.loads((tmp_path / COPYCAT_STATUS).read_text())
    assert (status["copied"], status["free_rides"]) == (1, 0)
    assert status["copies"][0]["victim_digest"] == victim.digest.hex()


def test_copycat_free_rides_when_it_heard_nothing(setup: tuple[NetworkConfig, Path]) -> None:
    network, base = setup
    ctx = _context(network, base)
    clock = FakeTime(500.0)
    copycat = LiveCopycat(COPYCAT, now=clock.now, sleep=clock.sleep)
    copycat.attach(RoundClock(genesis_time=600.0, round_length=2.0))
    copycat.work(ctx)  # the service's warm-up before genesis: no wait, not counted
    assert clock.slept == [] and (copycat.copied, copycat.free_rides) == (0, 0)
    clock.t = 600.1
    raw = copycat.work(ctx)
    message = open_envelope(raw, network_id=ctx.network_id, expect=Contribution).message
    assert message.sender == COPYCAT.public.raw
    assert (copycat.copied, copycat.free_rides) == (0, 1)
    assert len(set(message.codes)) == 1  # all-zero scalars quantize to one code


def test_copycat_is_a_live_attack() -> None:
    assert "copycat" in LIVE_ATTACKS
    spec = DevnetSpec(miners=1, validators=1, rounds=1)
    work = WorkConfig.of(network_config(spec, bytes(32)))
    assert isinstance(live_miner("copycat", COPYCAT, work), LiveCopycat)


async def _run(network: NetworkConfig, base: Path, tmp: Path) -> tuple[ValidatorService,
                                                                       LiveCopycat]:
    transport = transports(network.network_id)
    work = WorkConfig.of(network)
    common = {"network": network, "genesis_time": start_time(network),
              "peers": (LEADER.peer_id,), "last_round": ROUNDS}

    vstate = ModelState.from_base(network, base)
    certifier = scoring_certifier(network, LEADER, tmp / "v")
    vconfig = ValidatorConfig(state_dir=tmp / "v", validators=((LEADER.public.raw, 1),),
                              miners=KEYS, **common)  # type: ignore[arg-type]
    validator = ValidatorService(vconfig, LEADER, transport(LEADER),
                                 ScoringEngine(vstate, certifier, KEYS, work))
    services: list[MinerService | ValidatorService] = [validator]
    for i, (key, attack) in enumerate([(k, "") for k in HONEST] + [(COPYCAT, "copycat")]):
        config = MinerConfig(state_dir=tmp / f"m{i}", validators=((LEADER.public.raw, 1),),
                             **common)  # type: ignore[arg-type]
        produce = MinerProduce(live_miner(attack, key, work), KEYS, work)
        services.append(MinerService(config, transport(key), ModelState.from_base(network, base),
                                     produce))
    copycat_service = services[-1]
    tap = copycat_tap(copycat_service)
    assert tap is not None and copycat_tap(validator) is None
    assert isinstance(copycat_service, MinerService)
    assert isinstance(copycat_service.produce, MinerProduce)
    copycat = copycat_service.produce.miner
    await run_until_round(services, ROUNDS, limit_s=limit_s(network, ROUNDS),
                          extra=[tap.listen(copycat_service.transport)])
    assert isinstance(copycat, LiveCopycat)
    return validator, copycat


def test_live_copycat_copies_every_round_and_is_never_paid(
    setup: tuple[NetworkConfig, Path], tmp_path: Path,
) -> None:
    network, base = setup
    validator, copycat = asyncio.run(_run(network, base, tmp_path))
    me = COPYCAT.public.raw

    copies = {c["round"]: c for c in copycat.copies}
    assert sorted(copies) == list(range(ROUNDS)), copycat.status()
    assert copycat.free_rides == 0
    status = json.loads((tmp_path / "m2" / COPYCAT_STATUS).read_text())
    assert status["copied"] == ROUNDS

    honest = {k.public.raw.hex() for k in HONEST}
    victims_certified = scored_copies = 0
    for r in range(ROUNDS):
        raw = validator.follower.store.get(r)
        assert raw is not None, f"round {r} was not certified"
        bundle = validator.follower.open_entry(raw).bundle
        assert me not in {c.message.sender for c in bundle.contributions}  # never certified
        assert copies[r]["victim"] in honest
        # what it copied is what the honest miner published (and got certified for)
        by_sender = {c.message.sender.hex(): c for c in bundle.contributions}
        victim = by_sender.get(copies[r]["victim"])
        if victim is not None:
            assert victim.digest.hex() == copies[r]["victim_digest"]
            victims_certified += 1
        # the validator's pipeline received and scored the copy, and gave it nothing
        receipt = validator.receipts.receipt(me, r)
        assert receipt is not None and receipt.weight_ppb == 0, receipt
        scored_copies += receipt.reason != "not included"
    # a loaded machine may leave a round empty (work past the deadline), never all of them
    assert victims_certified >= 1 and scored_copies >= 1
