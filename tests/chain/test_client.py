"""The Python client: exactly-once submission, nonces under concurrency, retries, decoding."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from adapters.chain.backends import connect
from adapters.chain.chain_errors import ChainRevert, TransientRpcError
from adapters.chain.client import ChainClient
from adapters.chain.devnode import AnvilNode, free_port
from adapters.chain.journal import JournalEntry
from adapters.chain.retry import RetryPolicy, call_with_retries
from protocol.settlement.weight_vector import normalize_weights
from tests.chain.harness import ETH, Net, make_net

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def net(w3: Web3) -> Net:
    return make_net(w3)


def _restart(net: Net, index: int, journal: Path) -> ChainClient:
    """A new client process for validator `index`: fresh sender, same key, same journal."""
    account: LocalAccount = net.validators[index].sender._account  # the key a restart reloads
    return ChainClient.connect(net.w3, net.suite.deployment, account, journal_path=journal)


def _nonce(net: Net, client: ChainClient) -> int:
    return net.w3.eth.get_transaction_count(client.address)  # type: ignore[arg-type]


def test_weights_are_submitted_once_across_restarts(net: Net, tmp_path: Path) -> None:
    journal = tmp_path / "journal.json"
    epoch = net.suite.registry.current_epoch()
    first, second = normalize_weights([1, 2, 3, 4]), normalize_weights([4, 3, 2, 1])
    net.goto_commit(epoch)
    before = _restart(net, 0, journal)
    assert before.weights is not None
    assert before.weights.commit(epoch, first) is not None
    sent = _nonce(net, before)
    after = _restart(net, 0, journal)  # the process crashed and came back with new scores
    assert after.weights is not None
    assert after.weights.commit(epoch, second) is None
    assert after.weights.weights_for(epoch) == first
    assert _nonce(net, after) == sent
    net.goto_reveal(epoch)
    assert after.weights.reveal(epoch) is not None
    assert _restart(net, 0, journal).weights.reveal(epoch) is None  # type: ignore[union-attr]
    assert net.suite.incentives.revealed_weights(epoch, after.address) == first
    assert _nonce(net, after) == sent + 1


def test_crash_between_journal_and_send_still_commits_journaled_weights(
    net: Net, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.json"
    epoch = net.suite.registry.current_epoch()
    net.goto_commit(epoch)
    client = _restart(net, 1, journal)
    assert client.weights is not None
    journaled = normalize_weights([9, 1, 0, 0])
    # Simulates the crash: the write-ahead entry (with the hash of a signed transaction that
    # never reached the node) is on disk, nothing is on chain.
    entry = JournalEntry(epoch, journaled, b"\x33" * 32, commit_tx="0x" + "ab" * 32)
    client.weights._journal.put(entry)
    assert client.weights.commit(epoch, normalize_weights([1, 1, 1, 1])) is not None
    net.goto_reveal(epoch)
    client.weights.reveal(epoch)
    assert net.suite.incentives.revealed_weights(epoch, client.address) == journaled


def test_reverts_carry_custom_error_names_and_arguments(net: Net) -> None:
    outsider = net.join()
    with pytest.raises(ChainRevert) as info:
        outsider.registry.register_validator(b"\x42" * 32, ETH - 1)
    assert info.value.error_name == "InsufficientStake"
    assert info.value.error_args == (ETH - 1, ETH)
    assert "InsufficientStake" in str(info.value)
    with pytest.raises(ChainRevert) as zero:
        outsider.registry.register_validator(bytes(32), ETH)
    assert (zero.value.error_name, zero.value.error_args) == ("ZeroNodeKey", ())
    with pytest.raises(ChainRevert) as minting:
        outsider.sender.send(outsider.token.functions.mint(outsider.address, 1))
    assert minting.value.error_name == "UnauthorizedMinter"


def test_concurrent_submissions_from_one_account_do_not_collide(net: Net) -> None:
    validator = net.validators[2]
    clones = [
        ChainClient.connect(net.w3, net.suite.deployment, validator.sender._account)
        for _ in range(4)
    ]
    stake = validator.registry.stake_of()
    start = _nonce(net, validator)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda c: c.registry.add_stake(1), clones * 3))
    assert len({r.tx_hash for r in results}) == 12
    assert validator.registry.stake_of() == stake + 12
    assert _nonce(net, validator) == start + 12


def test_transient_connection_errors_are_retried(anvil_binary: Path) -> None:
    port = free_port()
    w3 = connect(f"http://127.0.0.1:{port}", timeout=1.0)
    with pytest.raises(TransientRpcError):
        call_with_retries(lambda: w3.eth.chain_id, RetryPolicy(attempts=2, initial_delay=0.01))
    node = AnvilNode(anvil_binary, port=port)
    starter = threading.Timer(0.5, node.start)
    starter.start()
    try:
        policy = RetryPolicy(attempts=60, initial_delay=0.05, max_delay=0.2)
        assert call_with_retries(lambda: w3.eth.chain_id, policy) == 31337
    finally:
        starter.join()
        node.stop()


def _rpc(w3: Web3, method: str, *params: object) -> None:
    response = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in response, response


def test_a_transaction_mined_a_second_after_its_estimate_has_the_gas_to_land(
    anvil_binary: Path,
) -> None:
    """The estimate updates the stake checkpoints of its own second in place; mined one second
    later, the same call writes new checkpoints (fresh storage). Under load this happened by
    chance and ran out of gas; here the seconds are set by hand."""
    with AnvilNode(anvil_binary) as node:
        w3 = connect(node.url)
        net = make_net(w3)
        validator = net.validators[0]
        second = int(w3.eth.get_block("latest")["timestamp"]) + 10
        _rpc(w3, "evm_setNextBlockTimestamp", second)
        validator.registry.add_stake(1)  # checkpoints at `second`
        _rpc(w3, "evm_setAutomine", False)
        _rpc(w3, "evm_setNextBlockTimestamp", second)  # the estimate sees that same second
        call = validator.registry._contract.functions.addStake()
        tx_hash = validator.sender.submit(call, 1)
        _rpc(w3, "evm_setNextBlockTimestamp", second + 1)
        _rpc(w3, "evm_mine")
        _rpc(w3, "evm_setAutomine", True)
        result = validator.sender.confirm(call, 1, tx_hash)
        assert result.gas_used > 80_000  # new checkpoints, not updates in place
