"""The dev-chain faucet: funds a new account once, refuses garbage, and its client says why."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account

from adapters.chain.backends import connect
from adapters.chain.chain_errors import ChainError
from adapters.chain.faucet import Faucet, request_funds
from protocol.domain_types import EvmAddress, Wei

pytestmark = pytest.mark.chain

AMOUNT = Wei(5 * 10**18)


@pytest.fixture
def faucet() -> Iterator[Faucet]:
    from adapters.chain.embedded_rpc import EmbeddedRpcServer

    server = EmbeddedRpcServer(connect("embedded")).start()
    tap = Faucet(server.url, AMOUNT).start()
    try:
        yield tap
    finally:
        tap.stop()
        server.stop()


def test_a_new_account_is_funded_once(faucet: Faucet) -> None:
    address = EvmAddress(Account.create().address)
    w3 = connect(faucet.rpc_url)
    assert w3.eth.get_balance(address) == 0
    assert request_funds(faucet.url, address, timeout_s=30) == AMOUNT
    assert w3.eth.get_balance(address) == AMOUNT
    assert request_funds(faucet.url, address, timeout_s=30) == 0  # once: not an error
    assert w3.eth.get_balance(address) == AMOUNT


def test_garbage_is_refused_and_an_absent_faucet_is_named(faucet: Faucet) -> None:
    assert faucet.fund("0x1234")[0] == 400
    with pytest.raises(ChainError, match="refused"):
        request_funds(faucet.url, EvmAddress("not-an-address"), timeout_s=30)
    url = faucet.url
    faucet.stop()
    with pytest.raises(ChainError, match=f"cannot reach the faucet at {url}"):
        request_funds(url, EvmAddress(Account.create().address), timeout_s=5)
