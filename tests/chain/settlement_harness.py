"""One small network (3 validators, 4 miners, 60 s epochs, 20 s windows) behind either
settlement port: the web3 client on a dev chain, or the in-memory chain. The shared suite
(test_settlement_port.py) drives both through the same methods and checks the same values."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from adapters.chain.backends import set_time
from adapters.chain.chain_settlement import ChainSettlement
from adapters.chain.client import ChainClient
from adapters.chain.memory_chain import MemoryChain
from adapters.chain.memory_settlement import MemorySettlement
from adapters.chain.settlement_port import SettlementPort
from protocol.settlement.params import EconomicParams, NetworkParams
from tests.chain.harness import EMISSION, ETH, Net, node_key

VALIDATOR_STAKES = (ETH, 2 * ETH, 3 * ETH)
MINERS = 4
ECONOMICS = EconomicParams(EMISSION, commit_window=20, reveal_window=20)


class SettlementHarness(ABC):
    """The network as a test sees it: ports for its accounts, chain time, and read-outs."""

    network: NetworkParams
    economics: EconomicParams = ECONOMICS

    @abstractmethod
    def validator(self, index: int, journal: Path) -> SettlementPort:
        """A port for validator `index` (a new one is a restarted process) with `journal`."""

    @abstractmethod
    def miner(self, index: int, journal: Path) -> SettlementPort:
        """A port for miner `index`'s account, which is no validator."""

    @abstractmethod
    def validator_address(self, index: int) -> str: ...

    @abstractmethod
    def miner_address(self, index: int) -> str: ...

    @abstractmethod
    def fresh_epoch(self) -> int:
        """An epoch nobody has submitted for, whose commit window is still ahead."""

    @abstractmethod
    def goto(self, at: int) -> None:
        """Moves chain time forward to `at` (never back)."""

    @abstractmethod
    def revealed(self, epoch: int, address: str) -> tuple[int, ...]: ...

    @abstractmethod
    def claimable(self, address: str) -> int: ...


class Web3Harness(SettlementHarness):
    """The deployed contracts on a dev chain (shared by a module's tests: each takes its own
    epoch, later than the last one used)."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self.network = net.network

    def _port(self, client: ChainClient, journal: Path) -> SettlementPort:
        account: LocalAccount = client.sender._account  # the key a restart reloads
        net = self.net
        return ChainSettlement(
            ChainClient.connect(net.w3, net.suite.deployment, account, journal_path=journal))

    def validator(self, index: int, journal: Path) -> SettlementPort:
        return self._port(self.net.validators[index], journal)

    def miner(self, index: int, journal: Path) -> SettlementPort:
        return self._port(self.net.miners[index], journal)

    def validator_address(self, index: int) -> str:
        return self.net.validators[index].address

    def miner_address(self, index: int) -> str:
        return self.net.miners[index].address

    def fresh_epoch(self) -> int:
        return self.net.suite.registry.current_epoch() + 1

    def goto(self, at: int) -> None:
        set_time(self.net.w3, at)

    def revealed(self, epoch: int, address: str) -> tuple[int, ...]:
        return self.net.suite.incentives.revealed_weights(epoch, address)

    def claimable(self, address: str) -> int:
        return self.net.suite.incentives.claimable(address)


@dataclass
class FakeClock:
    """Chain time for the in-memory chain: moved by the test, never by waiting."""

    now: float

    def __call__(self) -> float:
        return self.now


def address(label: str) -> str:
    """A reproducible EVM address named `label`."""
    return to_checksum_address(hashlib.sha256(label.encode()).digest()[:20])


class MemoryHarness(SettlementHarness):
    """The same network on a MemoryChain; `network` takes the web3 one's parameters."""

    def __init__(self, network: NetworkParams) -> None:
        self.network = network
        self.clock = FakeClock(float(network.genesis_time))
        self.chain = MemoryChain(network, self.economics, self.clock)
        for i, stake in enumerate(VALIDATOR_STAKES):
            self.chain.register_validator(self.validator_address(i), node_key(1, i), stake)
        for i in range(MINERS):
            self.chain.register_miner(self.miner_address(i), node_key(2, i), ETH)

    def validator(self, index: int, journal: Path) -> SettlementPort:
        return MemorySettlement(self.chain, self.validator_address(index), journal)

    def miner(self, index: int, journal: Path) -> SettlementPort:
        return MemorySettlement(self.chain, self.miner_address(index), journal)

    def validator_address(self, index: int) -> str:
        return address(f"validator-{index}")

    def miner_address(self, index: int) -> str:
        return address(f"miner-{index}")

    def fresh_epoch(self) -> int:
        return 0

    def goto(self, at: int) -> None:
        self.clock.now = max(self.clock.now, float(at))

    def revealed(self, epoch: int, address: str) -> tuple[int, ...]:
        return self.chain.revealed_weights(epoch, address)

    def claimable(self, address: str) -> int:
        return self.chain.claimable(address)


def memory_network(genesis_time: int = 1_700_000_000) -> NetworkParams:
    """The schedule and limits tests.chain.harness.make_net deploys, at a fixed genesis."""
    return NetworkParams(
        genesis_time=genesis_time, round_length=10, epoch_length=6,
        genesis_model_hash=b"\x5e" * 32, min_miner_stake=ETH, min_validator_stake=ETH,
        unbonding_delay=100, max_miners=8, max_validators=8, immunity_epochs=1,
    )
