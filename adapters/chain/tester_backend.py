"""eth-tester's py-evm backend with calls and gas estimates that, like a real node's, cost nothing.

eth-tester charges an `eth_call` the way it charges a mined transaction: the `from` account must
hold gas x fee (30M gas x 1 gwei by default), so a read-only client (a fresh, empty account, or
a joiner who has not been funded yet) could not even read a view. geth and anvil run calls for
free. Here a call that fails for that reason alone is run again with the caller's balance
topped up inside a snapshot that is thrown away, and an estimate is run at a zero gas price (its
state has a zero base fee); mined transactions are validated exactly as before.
"""

from __future__ import annotations

from typing import Any

from eth.vm.spoof import SpoofTransaction
from eth_abi import abi
from eth_abi.exceptions import DecodingError
from eth_tester import PyEVMBackend
from eth_tester.backends.pyevm.main import _get_vm_for_block_number
from eth_tester.exceptions import TransactionFailed
from eth_utils import ValidationError as EvmValidationError

_UNAFFORDABLE = "cannot afford txn gas"
_FEE_KEYS = ("gas_price", "max_fee_per_gas", "max_priority_fee_per_gas")


def _unaffordable(exc: BaseException) -> bool:
    return isinstance(exc, EvmValidationError) and _UNAFFORDABLE in str(exc)


class FreeCallsBackend(PyEVMBackend):
    """PyEVMBackend whose calls and estimates need no funds (see the module docstring)."""

    def call(self, transaction: dict[str, Any], block_number: Any = "latest") -> bytes:
        try:
            return bytes(super().call(transaction, block_number))
        except EvmValidationError as exc:
            if not _unaffordable(exc):
                raise
        return self._call_with_gas_money(transaction, block_number)

    def estimate_gas(self, transaction: dict[str, Any], block_number: Any = "latest") -> int:
        try:
            return int(super().estimate_gas(transaction, block_number))
        except EvmValidationError as exc:
            if not _unaffordable(exc):
                raise
        free = {k: v for k, v in transaction.items() if k not in _FEE_KEYS}
        return int(super().estimate_gas({**free, "gas_price": 0}, block_number))

    def _call_with_gas_money(self, transaction: dict[str, Any], block_number: Any) -> bytes:
        """eth-tester's own call, with the sender's balance covering the gas in a snapshot."""
        tx = dict(transaction)
        tx.setdefault("gas", self._max_available_gas())
        unsigned = self._get_normalized_and_unsigned_evm_transaction(tx, block_number)
        spoofed = SpoofTransaction(unsigned, from_=transaction["from"])
        state = _get_vm_for_block_number(self.chain, block_number).state
        snapshot = state.snapshot()
        try:
            fee = getattr(spoofed, "max_fee_per_gas", None) or spoofed.gas_price
            cost = spoofed.gas * fee + spoofed.value
            if state.get_balance(transaction["from"]) < cost:
                state.set_balance(transaction["from"], cost)
            computation = state.apply_transaction(spoofed)
        finally:
            state.revert(snapshot)
        if computation.is_error:
            raise TransactionFailed(self._failure_message(computation._error))
        return bytes(computation.output)

    def _failure_message(self, error: Any) -> str:
        """What eth-tester's own `call` reports for a failed computation."""
        if self.is_eip838_error(error):
            try:
                return str(abi.decode(["string"], error.args[0][4:])[0])
            except DecodingError:
                pass
        return str(error)
