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
from adapters.chain.deployment import Deployment
from adapters.storage.keystore import KeyBundle
from protocol.domain_types import Wei
from protocol.netconfig import NetworkConfig
from seedswarm.devnet.schedule import DevnetSchedule
from seedswarm.devnet.spec import DevnetSpec
from seedswarm.launch.local_chain import ChainHandle
from seedswarm.launch.network_operator import Economics, deploy_network

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


def deploy(handle: ChainHandle, spec: DevnetSpec, network: NetworkConfig, genesis: int,
           schedule: DevnetSchedule) -> Deployment:
    """Deploy the suite with the devnet's schedule (genesis in chain seconds)."""
    economics = Economics(min_miner_stake=STAKE, min_validator_stake=STAKE, emission=EMISSION,
                          max_miners=max(8, spec.total_miners),
                          max_validators=max(4, spec.validators), unbonding_s=3600)
    return deploy_network(handle.w3, funded_account(handle.w3, 100 * ETH), network, economics,
                          genesis, schedule.commit_window, schedule.reveal_window)


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
