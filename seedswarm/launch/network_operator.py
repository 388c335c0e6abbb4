"""Starting a network: fix its genesis, deploy its contracts, write the file others join with.

`seedswarm network create` composes these; the devnet does the same with its own nodes on top.
The genesis model is built and hashed exactly as every node will load it (adapters included), so
the hash in the contracts, in the network's parameters and of the checkpoint agree.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from adapters.chain.backends import chain_time
from adapters.chain.deploy import deploy_suite
from adapters.chain.deployment import Deployment
from protocol.domain_types import ModelHash, Wei
from protocol.netconfig import NetworkConfig
from protocol.settlement.params import EconomicParams, NetworkParams
from runtime.model_state import ModelState
from training.genesis import GenesisSpec, build_genesis, save_genesis

BLOCK_TIME_S = 1.0
"""Dev chains here produce a block per transaction and an empty one each second; a real
chain's is given by its operator (`--block-time`)."""
VALIDATOR_MARGIN_S = 1.5
"""A validator sends an epoch step this long after its window opens (validator.service)."""


@dataclass(frozen=True)
class Economics:
    """What joining costs and what an epoch pays."""

    min_miner_stake: Wei
    min_validator_stake: Wei
    emission: Wei
    max_miners: int = 256
    max_validators: int = 16
    unbonding_s: int = 86_400
    immunity_epochs: int = 1
    miner_share_bps: int = 5_000


def write_genesis(recipe: GenesisSpec, path: Path) -> tuple[ModelHash, str]:
    """Build the genesis model, save it (adapters included) at `path`; its hash and the task
    data's fingerprint."""
    genesis = build_genesis(recipe)
    save_genesis(genesis, path, {"task": recipe.task, "trainable": recipe.trainable})
    return genesis.model_hash, genesis.task.fingerprint()


def check_genesis(network: NetworkConfig, path: Path) -> None:
    """ConfigError unless `path` loads, for `network`'s trainable spec, to its base hash."""
    ModelState.from_base(network, path)


def epoch_windows(round_length: float, validators: int, block_time_s: float) -> int:
    """Seconds for each of the commit and reveal windows: every validator's transaction, sent
    after its margin, is mined with room to spare; never shorter than two rounds."""
    return max(math.ceil(2 * round_length),
               math.ceil(VALIDATOR_MARGIN_S + 2 * (validators + 1) * block_time_s))


def deploy_network(w3: Web3, deployer: LocalAccount, network: NetworkConfig,
                   economics: Economics, genesis_time: int, commit_s: int,
                   reveal_s: int) -> Deployment:
    """Deploy the contracts for `network`, whose round 0 starts at chain time `genesis_time`,
    with commit and reveal windows of those seconds (`epoch_windows` sizes them)."""
    params = NetworkParams(
        genesis_time=genesis_time,
        round_length=math.ceil(network.round_length),
        epoch_length=network.epoch_length,
        genesis_model_hash=network.base_checkpoint_digest,
        min_miner_stake=economics.min_miner_stake,
        min_validator_stake=economics.min_validator_stake,
        unbonding_delay=economics.unbonding_s,
        max_miners=economics.max_miners,
        max_validators=economics.max_validators,
        immunity_epochs=economics.immunity_epochs,
    )
    terms = EconomicParams(economics.emission, commit_window=commit_s, reveal_window=reveal_s,
                           miner_share_bps=economics.miner_share_bps)
    return deploy_suite(w3, deployer, params, terms)


def planned_genesis(w3: Web3, startup_s: float) -> tuple[int, float]:
    """Genesis `startup_s` from now: (chain seconds, wall-clock seconds). Dev chains stamp
    bursts of blocks ahead of the wall clock; nodes count rounds on the wall clock."""
    chain_now = chain_time(w3)
    offset = max(0.0, chain_now - time.time())
    genesis = math.ceil(chain_now + startup_s)
    return genesis, genesis - offset
