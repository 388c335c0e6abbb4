"""The devnet's chain: start it, deploy the contracts, fund and register every node.

`embedded` runs eth-tester in the devnet process and serves it to the nodes over loopback
JSON-RPC (seedswarm.devnet.rpc): nothing to install, fine for short runs. `anvil` starts the
npm anvil binary (adapters.chain.devnode): faster, and the realistic choice for long runs.
Any other value is a JSON-RPC URL of a dev chain with unlocked, funded accounts.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from web3 import Web3

from adapters.chain.backends import chain_time, connect, fund, funded_account
from adapters.chain.client import ChainClient
from adapters.chain.deploy import deploy_suite
from adapters.chain.deployment import Deployment
from adapters.storage.keystore import KeyBundle
from protocol.domain_types import ModelHash, Wei
from protocol.settlement.params import EconomicParams, NetworkParams
from seedswarm.devnet.schedule import DevnetSchedule
from seedswarm.devnet.spec import DevnetSpec

_log = logging.getLogger("seedswarm.devnet.chain")
ETH = 10**18
STAKE = Wei(ETH)
EMISSION = Wei(1_000 * ETH)


@dataclass
class ChainHandle:
    """A running chain: the URL nodes use, the devnet's own Web3, and how to stop it."""

    kind: str
    url: str
    w3: Web3
    stop: Callable[[], None]


def start_chain(kind: str) -> ChainHandle:
    """Start (or attach to) the chain a devnet spec names."""
    if kind == "embedded":
        from seedswarm.devnet.rpc import EmbeddedRpcServer

        w3 = connect("embedded")
        server = EmbeddedRpcServer(w3).start()
        return ChainHandle(kind, server.url, w3, server.stop)
    if kind == "anvil":
        from adapters.chain.devnode import AnvilNode

        node = AnvilNode().start()
        ticker = BlockTicker(connect(node.url)).start()
        return ChainHandle(kind, node.url, connect(node.url), _both(ticker.stop, node.stop))
    ticker = BlockTicker(connect(kind)).start()
    return ChainHandle("url", kind, connect(kind), ticker.stop)


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def stop() -> None:
        first()
        second()

    return stop


class BlockTicker:
    """Mines an empty block each second while the wall clock is ahead of the chain.

    Dev chains that mine only on demand keep an idle chain's clock still, so calls and gas
    estimates for a transaction that waits for a time window would see the past forever; a
    real chain produces blocks continuously, and this makes a dev chain behave alike.
    """

    def __init__(self, w3: Web3, interval_s: float = 1.0) -> None:
        self._w3 = w3
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="block-ticker", daemon=True)

    def start(self) -> BlockTicker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            try:
                if time.time() >= chain_time(self._w3) + 1:
                    self._w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            except Exception as exc:  # a chain without evm_mine: stop trying
                _log.info("block ticker stopped: %r", exc)
                return


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
