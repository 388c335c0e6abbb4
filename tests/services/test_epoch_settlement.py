"""Validators settle an epoch on the in-memory chain: two validators (stakes 2 and 1), two
honest miners and a noise attacker run real rounds over the in-memory transport; when the
epoch ends, each validator commits the weights its own books hold, reveals them, and the epoch
is settled by the contracts' rules (adapters.chain.memory_chain). The honest miners are paid,
the attacker is not, and every credit is what the reference settlement of the revealed rows
gives."""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from pathlib import Path

from eth_utils.address import to_checksum_address

from adapters.chain.memory_chain import MemoryChain
from adapters.chain.memory_settlement import MemorySettlement
from node.service.miner import MinerConfig, MinerService
from node.service.produce import MinerProduce
from protocol.netconfig import NetworkConfig
from protocol.settlement.median import settle_reference
from protocol.settlement.params import EconomicParams, EpochStatus, NetworkParams
from runtime.model_state import ModelState
from seedswarm.devnet.attack_miners import live_miner
from seedswarm.devnet.spec import DevnetSpec
from tests.services.harness import key as _key
from tests.services.harness import limit_s, measured_network, run_until, start_time, transports
from training.work import WorkConfig
from validator.scorer_store import scoring_certifier
from validator.service.engine import ScoringEngine
from validator.service.epoch_chain import EpochChain
from validator.service.validator import ValidatorConfig, ValidatorService

ROUNDS = 3  # one epoch of three 2 s rounds
EMISSION = 1_000 * 10**18
WINDOW_ROUNDS = 2
"""Commit and reveal windows, in rounds (the in-memory chain needs no block time)."""
HONEST = [_key("settling-honest-0"), _key("settling-honest-1")]
ATTACKER = _key("settling-noise-0")
MINERS = [(k, "") for k in HONEST] + [(ATTACKER, "noise")]
VALIDATORS = [(_key("settling-validator-0"), 2), (_key("settling-validator-1"), 1)]


def account(label: str) -> str:
    """A reproducible EVM address for a participant (the chain's view of it)."""
    return to_checksum_address(hashlib.sha256(label.encode()).digest()[:20])


def _chain(network: NetworkConfig, genesis: int) -> MemoryChain:
    """The schedule the services run on, with every participant registered before genesis."""
    params = NetworkParams(
        genesis_time=genesis, round_length=int(network.round_length),
        epoch_length=network.epoch_length, genesis_model_hash=bytes(32),
        min_miner_stake=1, min_validator_stake=1, unbonding_delay=60, max_miners=8,
        max_validators=8, immunity_epochs=1,
    )
    window = math.ceil(WINDOW_ROUNDS * network.round_length)
    economics = EconomicParams(EMISSION, commit_window=window, reveal_window=window)
    chain = MemoryChain(params, economics, time.time)
    for i, (key, stake) in enumerate(VALIDATORS):
        chain.register_validator(account(f"validator-{i}"), key.public.raw, stake)
    for i, (key, _) in enumerate(MINERS):
        chain.register_miner(account(f"miner-{i}"), key.public.raw, 1)
    return chain


async def _run(network: NetworkConfig, base: Path, tmp: Path, chain: MemoryChain,
               genesis: int) -> list[ValidatorService]:
    transport = transports(network.network_id)
    work = WorkConfig.of(network)
    miners = tuple(k.public.raw for k, _ in MINERS)
    stakes = tuple((k.public.raw, s) for k, s in VALIDATORS)
    common = {"network": network, "genesis_time": float(genesis), "validators": stakes,
              "peers": tuple(k.peer_id for k, _ in VALIDATORS), "last_round": ROUNDS}

    validators = []
    for i, (key, _) in enumerate(VALIDATORS):
        state_dir = tmp / f"v{i}"
        port = MemorySettlement(chain, account(f"validator-{i}"),
                                state_dir / "weights-journal.json")
        config = ValidatorConfig(state_dir=state_dir, miners=miners, chain_margin_s=0.3,
                                 **common)  # type: ignore[arg-type]
        engine = ScoringEngine(ModelState.from_base(network, base),
                               scoring_certifier(network, key, state_dir), miners, work)
        validators.append(ValidatorService(config, key, transport(key), engine,
                                           EpochChain.connect(port)))
    services: list[MinerService | ValidatorService] = [*validators]
    for i, (key, attack) in enumerate(MINERS):
        mconfig = MinerConfig(state_dir=tmp / f"m{i}", **common)  # type: ignore[arg-type]
        produce = MinerProduce(live_miner(attack, key, work), miners, work)
        services.append(MinerService(mconfig, transport(key),
                                     ModelState.from_base(network, base), produce))

    def settled() -> bool:
        return all(0 in v.ledger.epochs and v.ledger.epochs[0].stage == "settled"
                   for v in validators)

    await run_until(services, settled, limit_s=limit_s(network, ROUNDS))
    return validators


def test_validators_settle_their_epoch_on_the_in_memory_chain(tmp_path: Path) -> None:
    spec = DevnetSpec(miners=2, validators=2, rounds=ROUNDS,
                      attackers=(("noise", 1),))
    base = tmp_path / "base.safetensors"
    network = measured_network(spec, base)
    genesis = math.ceil(start_time(network))
    chain = _chain(network, genesis)
    validators = asyncio.run(_run(network, base, tmp_path, chain, genesis))

    assert chain.epoch_status(0) is EpochStatus.SETTLED
    # each validator revealed what its own books held for the epoch, through its journal
    rows = []
    for i, v in enumerate(validators):
        assert v.chain is not None
        own = v.chain.slot_vector(v.ledger.epochs[0].scores)
        assert own is not None
        assert chain.revealed_weights(0, account(f"validator-{i}")) == own
        rows.append(own)
    # every credit is the reference settlement of those rows
    stakes = [s for _, s in VALIDATORS]
    expected = settle_reference(rows, stakes, len(MINERS), EMISSION)
    miner_credit = [chain.claimable(account(f"miner-{i}")) for i in range(len(MINERS))]
    assert miner_credit == list(expected.miner_rewards)
    assert [chain.claimable(account(f"validator-{i}")) for i in range(len(VALIDATORS))] == (
        list(expected.validator_rewards))
    # validator 0 holds 2/3 of the stake: its weights are the consensus
    assert expected.consensus == rows[0]
    # the honest miners earned their consensus weight, the attacker nothing
    attacker = len(MINERS) - 1
    assert all(miner_credit[i] > 0 for i in range(len(HONEST)))
    assert expected.consensus[attacker] == 0 and miner_credit[attacker] == 0
    assert sum(miner_credit) <= EMISSION // 2
