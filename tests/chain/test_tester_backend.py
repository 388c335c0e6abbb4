"""The embedded chain runs calls and gas estimates for an empty account, as a real node does,
while transactions are still paid for."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3 import Web3

from adapters.chain.backends import advance_time, connect
from adapters.chain.chain_errors import ChainError, ChainRevert
from adapters.chain.client import ChainClient
from adapters.chain.registry_contract import RegistryClient
from protocol.settlement.params import Role
from tests.chain.harness import ETH, Net, make_net

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def net() -> Net:
    return make_net(connect(), miners=1, validator_stakes=(ETH,))


def empty_client(net: Net) -> ChainClient:
    client = ChainClient.connect(net.w3, net.suite.deployment, Account.create())
    assert client.eth_balance() == 0
    return client


def test_an_empty_account_reads_views(net: Net) -> None:
    client = empty_client(net)
    miner = net.miners[0].address
    assert client.registry.role_of(miner) == Role.MINER
    assert client.registry.stake_of(miner) == ETH
    assert client.registry.network_params() == net.network
    assert client.incentives.claimable(miner) == 0
    assert client.token_balance(miner) == 0


def test_an_empty_account_gets_a_gas_estimate_and_decoded_reverts(net: Net) -> None:
    client = empty_client(net)
    fn = client.incentives.contract.functions.claim()
    with pytest.raises(ChainRevert) as raised:  # the call runs, and says why it would revert
        client.sender.call_decoded(fn)
    assert raised.value.error_name == "NothingToClaim"
    assert str(raised.value.error_args[0]).lower() == client.address.lower()
    transfer = client.token.functions.transfer(net.miners[0].address, 0)
    gas = transfer.estimate_gas({"from": client.address})  # type: ignore[typeddict-item]
    assert gas > 21_000


def test_views_see_the_same_block_as_a_funded_caller(net: Net) -> None:
    advance_time(net.w3, 2 * net.network.epoch_duration)
    epoch = empty_client(net).registry.current_epoch()
    assert epoch >= 2
    assert epoch == net.suite.registry.current_epoch()


def test_an_empty_account_still_cannot_send(net: Net) -> None:
    client = empty_client(net)
    with pytest.raises(ChainError):
        client.registry.register_miner(bytes(range(1, 33)), ETH)
    assert RegistryClient.read_only(net.w3, net.suite.deployment.registry).role_of(
        client.address) == Role.NONE


def test_a_funded_account_is_unaffected(net: Net) -> None:
    w3: Web3 = net.w3
    funded = net.join(10 * ETH)
    funded.registry.register_miner(bytes(range(2, 34)), ETH)
    assert funded.registry.role_of() == Role.MINER
    assert int(w3.eth.get_balance(funded.address)) < 9 * ETH  # type: ignore[arg-type]
