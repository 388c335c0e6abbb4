"""Miner and validator services in one process over the in-memory transport (no sockets):
their certified model is, bit for bit, the one the simulator computes for the same miners
when both certify through the same validator pipeline (`ScoringCertifier`)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

from node.honest_miner import HonestMiner
from node.service.miner import MinerConfig, MinerService
from node.service.produce import MinerProduce
from protocol.netconfig import NetworkConfig
from runtime.model_state import ModelState
from seedswarm.devnet.spec import DevnetSpec
from seedswarm.sim.swarm import Swarm, run_rounds
from tests.services.harness import key as _key
from tests.services.harness import limit_s, measured_network, run_until_round, transports
from training.genesis import Genesis
from training.work import WorkConfig
from validator.scorer import ScoringCertifier
from validator.service.engine import ScoringEngine
from validator.service.validator import ValidatorConfig, ValidatorService

ROUNDS = 3
MINERS = 3


MINER_KEYS = [_key(f"miner-{i}") for i in range(MINERS)]
LEADER = _key("validator")


def _services(network: NetworkConfig, base: Path, tmp: Path,
              ) -> tuple[list[MinerService | ValidatorService], list[ModelState]]:
    transport = transports(network.network_id)
    work = WorkConfig.of(network)
    miners = tuple(k.public.raw for k in MINER_KEYS)
    # models load first: genesis counts from when every node is ready (a busy machine is slow)
    states = [ModelState.from_base(network, base) for _ in range(MINERS + 1)]
    genesis = time.time() + 2.0
    common = {"network": network, "genesis_time": genesis, "peers": (LEADER.peer_id,),
              "last_round": ROUNDS}

    engine = ScoringEngine(states[0], ScoringCertifier(network, LEADER), miners, work)
    vconfig = ValidatorConfig(state_dir=tmp / "v", validators=((LEADER.public.raw, 1),),
                              miners=miners, **common)  # type: ignore[arg-type]
    services: list[MinerService | ValidatorService] = [
        ValidatorService(vconfig, LEADER, transport(LEADER), engine)
    ]
    for i, (key, state) in enumerate(zip(MINER_KEYS, states[1:], strict=True)):
        config = MinerConfig(state_dir=tmp / f"m{i}", validators=((LEADER.public.raw, 1),),
                             **common)  # type: ignore[arg-type]
        produce = MinerProduce(HonestMiner(key), miners, work)
        services.append(MinerService(config, transport(key), state, produce))
    return services, states


async def _run_live(network: NetworkConfig, base: Path, tmp: Path) -> list[bytes]:
    services, states = _services(network, base, tmp)
    await run_until_round(services, ROUNDS, limit_s=limit_s(network, ROUNDS))
    return [state.model_hash for state in states]


def _simulated(network: NetworkConfig, base: Path, work: WorkConfig) -> bytes:
    state = ModelState.from_base(network, base)
    genesis = Genesis(state.model, state.named, state.task, "devnet base", state.model_hash)
    # the live engine hands the pipeline its messages sorted by sender; publish in that order
    keys = sorted(MINER_KEYS, key=lambda k: k.public.raw)
    swarm = Swarm(genesis=genesis, network=network, work=work,
                  miners=[HonestMiner(k) for k in keys],
                  certifier=ScoringCertifier(network, LEADER))
    run_rounds(swarm, ROUNDS)
    return swarm.replica.model_hash


def test_live_services_reach_the_simulators_model(tmp_path: Path) -> None:
    spec = DevnetSpec(miners=MINERS, validators=1, rounds=ROUNDS)
    base = tmp_path / "base.safetensors"
    network = measured_network(spec, base)
    live = asyncio.run(_run_live(network, base, tmp_path))
    assert len(set(live)) == 1
    assert live[0] != network.base_checkpoint_digest
    assert live[0] == _simulated(network, base, WorkConfig.of(network))


def test_live_services_under_outer_momentum_reach_the_simulators_state(tmp_path: Path) -> None:
    # The outer momentum buffers are consensus state: the live miners (working on the state),
    # the validator (recomputing and previewing it) and the simulator hold them bit for bit.
    spec = DevnetSpec(miners=MINERS, validators=1, rounds=ROUNDS)
    base = tmp_path / "base.safetensors"
    network = dataclasses.replace(measured_network(spec, base), outer_momentum=0.9)
    live = asyncio.run(_run_live(network, base, tmp_path))
    assert len(set(live)) == 1
    assert live[0] == _simulated(network, base, WorkConfig.of(network))
    plain = dataclasses.replace(network, outer_momentum=0.0)
    assert live[0] != _simulated(plain, base, WorkConfig.of(plain))
