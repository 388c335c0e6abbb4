"""Signs and submits transactions for one local account: nonces, gas, retries, revert decoding."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.types import TxParams, TxReceipt

from adapters.chain.artifacts import all_abis
from adapters.chain.chain_errors import ChainError, ChainRevert
from adapters.chain.deployment import TxResult
from adapters.chain.nonce import NonceManager, nonce_manager_for
from adapters.chain.retry import RetryPolicy, call_with_retries, is_transient
from adapters.chain.revert import RevertDecoder
from protocol.domain_types import EvmAddress

_ALREADY_SENT = ("already known", "known transaction", "nonce too low", "already imported")


class Transactable(Protocol):
    """What web3's ContractFunction and ContractConstructor have in common."""

    def estimate_gas(self, transaction: TxParams | None = None) -> int: ...

    def build_transaction(self, transaction: TxParams | None = None) -> TxParams: ...


@dataclass(frozen=True)
class SenderConfig:
    """Tuning of transaction submission."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    gas_margin: float = 1.2
    # An estimate runs on the pending block; the transaction may be mined in a later second,
    # where a checkpoint the estimate updated in place (same timestamp) becomes a new entry:
    # up to four fresh storage slots at 22.1k gas each. Unused gas is not paid for.
    fresh_slot_headroom: int = 100_000
    receipt_timeout: float = 120.0
    poll_latency: float = 0.05


class TransactionSender:
    """Sends contract transactions from `account`, decoding reverts into ChainRevert."""

    def __init__(self, w3: Web3, account: LocalAccount, config: SenderConfig | None = None) -> None:
        self._w3 = w3
        self._account = account
        self._config = config or SenderConfig()
        self._decoder = RevertDecoder(all_abis())
        self._chain_id: int = self._rpc(lambda: w3.eth.chain_id)
        self._nonces: NonceManager = nonce_manager_for(
            w3.provider, account.address, self._pending_count
        )

    @property
    def address(self) -> EvmAddress:
        """The sending account."""
        return EvmAddress(str(self._account.address))

    @property
    def decoder(self) -> RevertDecoder:
        """Decoder for the suite's custom errors."""
        return self._decoder

    def send(self, call: Transactable, value: int = 0) -> TxResult:
        """Submits `call` and waits for it to be mined; raises ChainRevert if it reverts."""
        return self.confirm(call, value, self.submit(call, value))

    def submit(
        self,
        call: Transactable,
        value: int = 0,
        on_signed: Callable[[str], None] | None = None,
    ) -> HexBytes:
        """Signs and broadcasts `call` without waiting; returns the transaction hash.

        `on_signed` receives the hash after signing and before broadcasting, so a caller can
        journal it and, after a crash, find the transaction instead of sending another.
        """
        base = _tx_params(sender=self._account.address, value=value)
        gas = self._estimate(call, base)
        with self._nonces.reserve() as nonce:
            full = _tx_params(
                self._account.address, value, gas=gas, nonce=nonce, chainId=self._chain_id
            )
            tx: TxParams = self._rpc(lambda: call.build_transaction(full))
            signed = self._account.sign_transaction(cast(dict[str, Any], tx))
            if on_signed is not None:
                on_signed("0x" + bytes(signed.hash).hex())
            return self._broadcast(HexBytes(signed.raw_transaction), HexBytes(signed.hash))

    def wait(self, tx_hash: HexBytes) -> TxReceipt:
        """Waits for the receipt of `tx_hash`, retrying transient RPC failures."""
        receipt: TxReceipt = self._rpc(
            lambda: self._w3.eth.wait_for_transaction_receipt(
                tx_hash,
                timeout=self._config.receipt_timeout,
                poll_latency=self._config.poll_latency,
            )
        )
        return receipt

    def call_decoded(self, call: Any) -> Any:
        """Runs a view (`call.call()`), decoding reverts and retrying transient failures."""
        try:
            return self._rpc(lambda: call.call({"from": self._account.address}))
        except ChainError:
            raise
        except Exception as exc:
            raise self._as_revert(exc) from exc

    def confirm(self, call: Transactable, value: int, tx_hash: HexBytes) -> TxResult:
        """Waits for `tx_hash` (sent for `call`); raises the decoded revert if it failed."""
        receipt = self.wait(tx_hash)
        if receipt["status"] != 1:
            gas = int(self._rpc(lambda: self._w3.eth.get_transaction(tx_hash))["gas"])
            if int(receipt["gasUsed"]) >= gas:
                raise ChainRevert("OutOfGas", (gas,))
            raise self._replay(call, value, int(receipt["blockNumber"]))
        return TxResult(
            tx_hash="0x" + bytes(tx_hash).hex(),
            gas_used=int(receipt["gasUsed"]),
            block_number=int(receipt["blockNumber"]),
        )

    def _estimate(self, call: Transactable, base: TxParams) -> int:
        try:
            estimate = self._rpc(lambda: call.estimate_gas(base))
        except ChainError:
            raise
        except Exception as exc:
            raise self._as_revert(exc) from exc
        limit = int(self._rpc(lambda: self._w3.eth.get_block("latest"))["gasLimit"])
        padded = int(estimate * self._config.gas_margin) + self._config.fresh_slot_headroom
        return min(padded, limit)

    def _broadcast(self, raw: HexBytes, tx_hash: HexBytes) -> HexBytes:
        try:
            return HexBytes(self._rpc(lambda: self._w3.eth.send_raw_transaction(raw)))
        except Exception as exc:
            # A retried send whose first attempt did reach the node is reported as a duplicate.
            if any(m in str(exc).lower() for m in _ALREADY_SENT) and self._known(tx_hash):
                return tx_hash
            if isinstance(exc, ChainError):
                raise
            raise self._as_revert(exc) from exc

    def is_known(self, tx_hash: HexBytes) -> bool:
        """True when the node has the transaction (pending or mined)."""
        return bool(self._rpc(lambda: self._known(tx_hash)))

    def _known(self, tx_hash: HexBytes) -> bool:
        try:
            self._w3.eth.get_transaction(tx_hash)
        except TransactionNotFound:
            return False
        return True

    def _replay(self, call: Transactable, value: int, block: int) -> ChainError:
        tx = call.build_transaction(_tx_params(self._account.address, value, gas=30_000_000))
        probe = _tx_params(self._account.address, value, to=tx["to"], data=tx["data"])
        try:
            self._w3.eth.call(probe, block_identifier=max(block - 1, 0))
        except Exception as exc:
            return self._as_revert(exc)
        return ChainRevert("UnknownRevert", ())

    def _as_revert(self, exc: BaseException) -> ChainError:
        decoded = self._decoder.from_exception(exc)
        if decoded is not None:
            return decoded
        return ChainError(f"transaction rejected: {exc}")

    def _pending_count(self) -> int:
        return int(
            self._rpc(lambda: self._w3.eth.get_transaction_count(self._account.address, "pending"))
        )

    def _rpc(self, action: Any) -> Any:
        return call_with_retries(action, self._config.retry)


def _tx_params(sender: str, value: int, **extra: object) -> TxParams:
    return cast(TxParams, {"from": sender, "value": value, **extra})


__all__ = ["SenderConfig", "Transactable", "TransactionSender", "is_transient"]
