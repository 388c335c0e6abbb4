"""The live validator scores with the simulator's pipeline: over the in-memory transport, two
honest miners and a noise attacker (all in one process) run through the real services; the
attacker is never certified, the honest miners are, receipts come from the pipeline, and its
state survives a restart of the validator's scoring."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from node.service.miner import MinerConfig, MinerService
from node.service.produce import MinerProduce
from protocol.errors import ConfigError
from protocol.netconfig import NetworkConfig
from runtime.model_state import ModelState
from seedswarm.devnet.attack_miners import live_miner
from seedswarm.devnet.devnet_genesis import network_config
from seedswarm.devnet.spec import DevnetSpec
from tests.services.harness import key as _key
from tests.services.harness import (
    limit_s,
    measured_network,
    run_until_round,
    start_time,
    transports,
)
from training.work import WorkConfig
from validator.scorer_store import scoring_certifier
from validator.service.engine import ScoringEngine
from validator.service.validator import ValidatorConfig, ValidatorService

ROUNDS = 3
HONEST = [_key("honest-0"), _key("honest-1")]
ATTACKER = _key("noise-0")
LEADER = _key("scoring-validator")
MINERS = [(k, "") for k in HONEST] + [(ATTACKER, "noise")]


async def _run(network: NetworkConfig, base: Path, tmp: Path) -> ValidatorService:
    transport = transports(network.network_id)
    work = WorkConfig.of(network)
    keys = tuple(k.public.raw for k, _ in MINERS)
    common = {"network": network, "genesis_time": start_time(network),
              "peers": (LEADER.peer_id,), "last_round": ROUNDS}

    vstate = ModelState.from_base(network, base)
    certifier = scoring_certifier(network, LEADER, tmp / "v")
    vconfig = ValidatorConfig(state_dir=tmp / "v", validators=((LEADER.public.raw, 1),),
                              miners=keys, **common)  # type: ignore[arg-type]
    validator = ValidatorService(vconfig, LEADER, transport(LEADER),
                                 ScoringEngine(vstate, certifier, keys, work))
    services: list[MinerService | ValidatorService] = [validator]
    for i, (key, attack) in enumerate(MINERS):
        state = ModelState.from_base(network, base)
        config = MinerConfig(state_dir=tmp / f"m{i}", validators=((LEADER.public.raw, 1),),
                             **common)  # type: ignore[arg-type]
        produce = MinerProduce(live_miner(attack, key, work), keys, work)
        services.append(MinerService(config, transport(key), state, produce))
    await run_until_round(services, ROUNDS, limit_s=limit_s(network, ROUNDS))
    return validator


def test_live_pipeline_refuses_the_attacker_and_pays_honest_miners(tmp_path: Path) -> None:
    spec = DevnetSpec(miners=3, validators=1, rounds=ROUNDS)
    base = tmp_path / "base.safetensors"
    network = measured_network(spec, base)
    validator = asyncio.run(_run(network, base, tmp_path))

    certified: dict[bytes, int] = {}
    for r in range(ROUNDS):
        raw = validator.follower.store.get(r)
        assert raw is not None, f"round {r} was not certified"
        for entry in validator.follower.open_entry(raw).bundle.certificate.message.entries:
            certified[entry.sender] = certified.get(entry.sender, 0) + entry.weight_ppb
    attacker = ATTACKER.public.raw
    assert attacker not in certified
    assert all(certified.get(k.public.raw, 0) > 0 for k in HONEST)

    # receipts served by the validator are the pipeline's (weight-only ones say "not included")
    receipt = validator.receipts.receipt(attacker, 0)
    assert receipt is not None and receipt.weight_ppb == 0
    assert receipt.reason != "not included"
    honest = validator.receipts.receipt(HONEST[0].public.raw, ROUNDS - 1)
    assert honest is not None and honest.weight_ppb > 0

    # the pipeline's books and ratings are persisted: a fresh scorer starts where it stopped
    before = validator.engine.scorer.pipeline.state_to_json()  # type: ignore[attr-defined]
    restored = scoring_certifier(network, LEADER, tmp_path / "v")
    assert restored.pipeline.state_to_json() == before
    assert attacker in restored.pipeline.books
    assert set(restored.ratings.ratings) >= {k.public.raw.hex() for k in HONEST}


def test_live_miner_runs_the_simulators_attackers() -> None:
    spec = DevnetSpec(miners=1, validators=1, rounds=1)
    work = WorkConfig.of(network_config(spec, bytes(32)))
    assert type(live_miner("noise", ATTACKER, work)).__name__ == "NoiseMiner"
    assert type(live_miner("", ATTACKER, work)).__name__ == "HonestMiner"
    assert type(live_miner("copycat", ATTACKER, work)).__name__ == "LiveCopycat"
    with pytest.raises(ConfigError):
        live_miner("no-such-attack", ATTACKER, work)
