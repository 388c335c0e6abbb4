"""The devnet's chain side: deploy the contracts, fund and register every node (the chain
itself is started by seedswarm.launch.local_chain)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from adapters.chain.backends import chain_time, fund, funded_account
from adapters.chain.client import ChainClient
from adapters.chain.deploy import deploy_suite
from adapters.chain.deployment import Deployment
from adapters.storage.keystore import KeyBundle
from protocol.domain_types import ModelHash, Wei
from protocol.settlement.params import EconomicParams, NetworkParams
from seedswarm.devnet.schedule import DevnetSchedule
from seedswarm.devnet.spec import DevnetSpec
from seedswarm.launch.local_chain import ChainHandle

_log = logging.getLogger("seedswarm.devnet.chain")
ETH = 10**18
STAKE = Wei(ETH)
EMISSION = Wei(1_000 * ETH)


@dataclass(frozen=True)
class Participant:
    """A node the devnet registers: its keys and role."""

    name: str
    role: str
    keys: KeyBundle
    stake: Wei = STAKE
    attack: str = ""
    """Miners only: the simulator attacker this miner runs ("" for honest)."""


def deploy(
    handle: ChainHandle, spec: DevnetSpec, base_hash: ModelHash, genesis: int,
    schedule: DevnetSchedule,
) -> Deployment:
    """Deploy the suite with the devnet's schedule (genesis in chain seconds)."""
    network = NetworkParams(
        genesis_time=genesis,
        round_length=schedule.round_length,
        epoch_length=schedule.epoch_length,
        genesis_model_hash=base_hash,
        min_miner_stake=STAKE,
        min_validator_stake=STAKE,
        unbonding_delay=3600,
        max_miners=max(8, spec.total_miners),
        max_validators=max(4, spec.validators),
        immunity_epochs=1,
    )
    economics = EconomicParams(EMISSION, commit_window=schedule.commit_window,
                               reveal_window=schedule.reveal_window)
    return deploy_suite(handle.w3, funded_account(handle.w3, 100 * ETH), network, economics)


def register_all(handle: ChainHandle, deployment: Deployment,
                 participants: Sequence[Participant]) -> None:
    """Fund every node's account and register it with its node key and stake."""
    for p in participants:
        fund(handle.w3, p.keys.evm_address, p.stake + 10 * ETH)
        client = ChainClient.connect(handle.w3, deployment, p.keys.evm_account)
        node_key = p.keys.node_key.public.raw
        if p.role == "miner":
            client.registry.register_miner(node_key, p.stake)
        else:
            client.registry.register_validator(node_key, p.stake)


def chain_clock_offset(handle: ChainHandle) -> float:
    """Chain time minus wall time: dev chains stamp a burst of blocks ahead of the clock."""
    return chain_time(handle.w3) - time.time()


def planned_genesis(handle: ChainHandle, spec: DevnetSpec, participants: int) -> int:
    """A chain genesis far enough ahead for setup (about a second per transaction) and start."""
    setup_s = 6 + 2 * participants
    return math.ceil(chain_time(handle.w3) + setup_s + spec.startup_s)
