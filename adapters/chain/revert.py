"""Turns revert data into ChainRevert carrying the contract's custom error name and arguments."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.crypto import keccak

from adapters.chain.chain_errors import ChainRevert

_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)
_TESTER_PREFIX = "execution reverted: "


@dataclass(frozen=True)
class _ErrorSpec:
    name: str
    types: tuple[str, ...]


def _abi_type(param: Mapping[str, Any]) -> str:
    kind = str(param["type"])
    if not kind.startswith("tuple"):
        return kind
    inner = ",".join(_abi_type(c) for c in param.get("components", ()))
    return f"({inner}){kind[len('tuple') :]}"


class RevertDecoder:
    """Maps 4-byte selectors of the suite's custom errors to names and argument types."""

    def __init__(self, abis: Iterable[Sequence[Mapping[str, Any]]]) -> None:
        self._specs: dict[bytes, _ErrorSpec] = {}
        for abi in abis:
            for item in abi:
                if item.get("type") != "error":
                    continue
                types = tuple(_abi_type(p) for p in item.get("inputs", ()))
                signature = f"{item['name']}({','.join(types)})"
                self._specs[keccak(text=signature)[:4]] = _ErrorSpec(str(item["name"]), types)

    def decode(self, data: bytes) -> ChainRevert:
        """Decodes raw revert data (selector + ABI-encoded arguments)."""
        if len(data) < 4:
            return ChainRevert("EmptyRevert", (), data)
        selector, body = data[:4], data[4:]
        if selector == _ERROR_STRING:
            return ChainRevert("Error", tuple(abi_decode(["string"], body)), data)
        if selector == _PANIC:
            return ChainRevert("Panic", tuple(abi_decode(["uint256"], body)), data)
        spec = self._specs.get(selector)
        if spec is None:
            return ChainRevert("UnknownError", (data,), data)
        return ChainRevert(spec.name, tuple(abi_decode(list(spec.types), body)), data)

    def from_exception(self, exc: BaseException) -> ChainRevert | None:
        """The decoded revert behind a web3 or eth-tester exception; None if it is not one."""
        data = revert_data_of(exc)
        if data is not None:
            return self.decode(data)
        message = str(exc.args[0]) if exc.args else ""
        if type(exc).__name__ == "TransactionFailed" or "revert" in message.lower():
            return ChainRevert("Error", (message.removeprefix(_TESTER_PREFIX),))
        return None


def revert_data_of(exc: BaseException) -> bytes | None:
    """Raw revert bytes from web3's ContractLogicError (anvil, HTTP) or eth-tester's message."""
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        return bytes.fromhex(data[2:])
    if isinstance(data, bytes):
        return data
    # eth-tester reports custom errors as the repr of the raw bytes inside the message.
    message = str(exc.args[0]) if exc.args else ""
    literal = message.removeprefix(_TESTER_PREFIX)
    if literal.startswith(("b'", 'b"')):
        try:
            value = ast.literal_eval(literal)
        except (ValueError, SyntaxError):
            return None
        return value if isinstance(value, bytes) else None
    return None
