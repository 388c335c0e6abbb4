"""Builds small seedswarm networks on a dev chain for the chain tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from web3 import Web3

from adapters.chain.backends import chain_time, funded_account, set_time
from adapters.chain.client import ChainClient
from protocol.settlement.params import EconomicParams, NetworkParams
from protocol.settlement.weight_vector import commit_digest

ETH = 10**18
EMISSION = 1_000 * ETH
SALT = bytes(range(32))


def node_key(kind: int, index: int) -> bytes:
    """A distinct 32-byte stand-in for an Ed25519 public key."""
    return bytes([kind]) + index.to_bytes(4, "big") + bytes(27)


@dataclass
class Net:
    """A deployed suite with registered validators and miners."""

    w3: Web3
    suite: ChainClient
    validators: list[ChainClient]
    miners: list[ChainClient]
    network: NetworkParams
    economics: EconomicParams

    def join(self, funds: int = 100 * ETH) -> ChainClient:
        """A new funded, unregistered participant."""
        return ChainClient.connect(self.w3, self.suite.deployment, funded_account(self.w3, funds))

    def goto_commit(self, epoch: int) -> None:
        set_time(self.w3, self.suite.incentives.windows(epoch).commit_opens)

    def goto_reveal(self, epoch: int) -> None:
        set_time(self.w3, self.suite.incentives.windows(epoch).reveal_opens)

    def goto_settle(self, epoch: int) -> None:
        set_time(self.w3, self.suite.incentives.windows(epoch).settle_opens)

    def goto_epoch_end(self, epoch: int) -> None:
        set_time(self.w3, self.suite.registry.epoch_end(epoch))

    def commit(self, epoch: int, rows: Sequence[Sequence[int]], who: Sequence[ChainClient]) -> None:
        for v, row in zip(who, rows, strict=True):
            v.incentives.commit(epoch, commit_digest(epoch, v.address, row, SALT))

    def reveal(self, epoch: int, rows: Sequence[Sequence[int]], who: Sequence[ChainClient]) -> None:
        for v, row in zip(who, rows, strict=True):
            v.incentives.reveal(epoch, row, SALT)

    def run_epoch(self, epoch: int, rows: Sequence[Sequence[int]]) -> None:
        """Every validator commits and reveals its row; the epoch is then settled."""
        who = self.validators[: len(rows)]
        self.goto_commit(epoch)
        self.commit(epoch, rows, who)
        self.goto_reveal(epoch)
        self.reveal(epoch, rows, who)
        self.goto_settle(epoch)
        self.suite.incentives.settle(epoch)

    def stakes(self) -> list[int]:
        return [v.registry.stake_of() for v in self.validators]


def make_net(
    w3: Web3,
    *,
    miners: int = 4,
    validator_stakes: Sequence[int] = (ETH, 2 * ETH, 3 * ETH),
    max_miners: int = 8,
    max_validators: int = 8,
    immunity_epochs: int = 1,
    unbonding_delay: int = 100,
) -> Net:
    """Deploys a suite (60 s epochs, 20 s windows) and registers the participants."""
    network = NetworkParams(
        genesis_time=chain_time(w3),
        round_length=10,
        epoch_length=6,
        genesis_model_hash=b"\x5e" * 32,
        min_miner_stake=ETH,
        min_validator_stake=ETH,
        unbonding_delay=unbonding_delay,
        max_miners=max_miners,
        max_validators=max_validators,
        immunity_epochs=immunity_epochs,
    )
    economics = EconomicParams(EMISSION, commit_window=20, reveal_window=20)
    suite = ChainClient.deploy(w3, funded_account(w3, 100 * ETH), network, economics)
    net = Net(w3, suite, [], [], network, economics)
    for i, stake in enumerate(validator_stakes):
        client = net.join(stake + 10 * ETH)
        client.registry.register_validator(node_key(1, i), stake)
        net.validators.append(client)
    for i in range(miners):
        client = net.join(10 * ETH)
        client.registry.register_miner(node_key(2, i), ETH)
        net.miners.append(client)
    return net
