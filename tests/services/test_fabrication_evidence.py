"""A live validator keeps each fabrication its audits prove: the miner's signed contribution,
stored under state_dir/proofs and named for `seedswarm slash` (the evidence hash is the SHA-256
of exactly those bytes), counted in its status."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from node.service.miner import MinerConfig, MinerService
from node.service.produce import MinerProduce
from protocol.messages import Contribution
from protocol.settlement.slashing import evidence_hash
from protocol.signing import open_envelope
from runtime.model_state import ModelState
from seedswarm.devnet.attack_miners import live_miner
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

ROUNDS = 2
HONEST = _key("evidence-test-honest")
LAZY = _key("evidence-test-lazy")
LEADER = _key("evidence-test-validator")
KEYS = (HONEST.public.raw, LAZY.public.raw)


async def _run(tmp: Path) -> ValidatorService:
    spec = DevnetSpec(miners=2, validators=1, rounds=ROUNDS)
    base = tmp / "base.safetensors"
    network = measured_network(spec, base)
    transport = transports(network.network_id)
    work = WorkConfig.of(network)
    common = {"network": network, "genesis_time": start_time(network),
              "peers": (LEADER.peer_id,), "last_round": ROUNDS}
    vconfig = ValidatorConfig(state_dir=tmp / "v", validators=((LEADER.public.raw, 1),),
                              miners=KEYS, **common)  # type: ignore[arg-type]
    validator = ValidatorService(
        vconfig, LEADER, transport(LEADER),
        ScoringEngine(ModelState.from_base(network, base),
                      scoring_certifier(network, LEADER, tmp / "v"), KEYS, work))
    services: list[MinerService | ValidatorService] = [validator]
    for i, (key, attack) in enumerate([(HONEST, ""), (LAZY, "lazy")]):
        config = MinerConfig(state_dir=tmp / f"m{i}", validators=((LEADER.public.raw, 1),),
                             **common)  # type: ignore[arg-type]
        services.append(MinerService(config, transport(key), ModelState.from_base(network, base),
                                     MinerProduce(live_miner(attack, key, work), KEYS, work)))
    await run_until_round(services, ROUNDS, limit_s=limit_s(network, ROUNDS))
    return validator


def test_a_proven_fabrication_is_kept_as_slash_evidence(tmp_path: Path) -> None:
    validator = asyncio.run(_run(tmp_path))
    proofs = sorted((tmp_path / "v" / "proofs").glob("*.bin"))
    assert proofs, "the lazy miner's failed audit left no evidence"
    assert validator.status()["fabrications_proven"] == len(proofs)
    network = validator.config.network
    for path in proofs:
        raw = path.read_bytes()
        signed = open_envelope(raw, network_id=network.network_id,
                               max_size=network.max_message_bytes, expect=Contribution)
        assert signed.message.sender == LAZY.public.raw  # never the honest miner
        assert path.name.endswith(f"-{LAZY.public.raw.hex()[:16]}.bin")
        assert evidence_hash(raw) == hashlib.sha256(raw).digest()
