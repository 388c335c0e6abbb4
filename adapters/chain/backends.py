"""Connecting to a chain: the embedded in-process EVM, or any JSON-RPC URL; dev-chain helpers."""

from __future__ import annotations

import threading
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from web3 import EthereumTesterProvider, Web3
from web3.types import RPCEndpoint, RPCResponse

from adapters.chain.chain_errors import ChainError

EMBEDDED = "embedded"


class SerializedTesterProvider(EthereumTesterProvider):
    """The in-process EVM, safe to share between threads.

    eth-tester mutates one chain object without any locking: a thread estimating gas while
    another sends a transaction sees a half-updated pending state (observed as spurious
    "invalid nonce" errors). A real node serializes requests itself; here one lock does.
    Calls and gas estimates need no funds, as on a real node (adapters.chain.tester_backend).
    """

    def __init__(self) -> None:
        from eth_tester import EthereumTester

        from adapters.chain.tester_backend import FreeCallsBackend

        super().__init__(EthereumTester(FreeCallsBackend()))
        self._request_lock = threading.RLock()

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        with self._request_lock:
            return super().make_request(method, params)


def connect(url: str = EMBEDDED, timeout: float = 10.0) -> Web3:
    """A Web3 for `url`: "embedded" starts eth-tester with py-evm in this process."""
    if url == EMBEDDED:
        return Web3(SerializedTesterProvider())
    if url.startswith(("http://", "https://")):
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
        return w3
    raise ChainError(f"unsupported chain URL {url!r} (use 'embedded' or http(s)://)")


def is_embedded(w3: Web3) -> bool:
    """True for the in-process eth-tester chain."""
    return isinstance(w3.provider, EthereumTesterProvider)


def chain_time(w3: Web3) -> int:
    """Timestamp of the latest block."""
    return int(w3.eth.get_block("latest")["timestamp"])


def advance_time(w3: Web3, seconds: int) -> int:
    """Dev chains only: mines a block exactly `seconds` after the latest one (not after the
    wall clock, which moves on while a loaded machine sends the request); returns its time."""
    target = chain_time(w3) + seconds
    if is_embedded(w3):
        tester: Any = w3.provider.ethereum_tester  # type: ignore[attr-defined]
        tester.time_travel(target)
    else:
        w3.provider.make_request("evm_setNextBlockTimestamp", [target])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    return chain_time(w3)


def set_time(w3: Web3, timestamp: int) -> int:
    """Dev chains only: moves chain time forward to at least `timestamp`."""
    now = chain_time(w3)
    if timestamp > now:
        return advance_time(w3, timestamp - now)
    return now


def fund(w3: Web3, to: str, amount: int) -> None:
    """Dev chains only: sends `amount` wei from the chain's first unlocked account."""
    source = w3.eth.accounts[0]
    tx_hash = w3.eth.send_transaction(
        {"from": source, "to": to_checksum_address(to), "value": amount}  # type: ignore[typeddict-item]
    )
    w3.eth.wait_for_transaction_receipt(tx_hash)


def funded_account(w3: Web3, amount: int) -> LocalAccount:
    """Dev chains only: a fresh local account holding `amount` wei."""
    account: LocalAccount = Account.create()
    fund(w3, account.address, amount)
    return account
