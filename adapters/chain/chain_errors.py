"""Errors raised by the chain client, all under the project's SeedswarmError (InvalidWeights,
a settlement rule's error, is re-exported for the client's callers)."""

from __future__ import annotations

from typing import Any

from protocol.errors import InvalidWeights, SeedswarmError

__all__ = [
    "ArtifactError", "ChainError", "ChainRevert", "InvalidWeights", "JournalConflict",
    "TransientRpcError",
]


class ChainError(SeedswarmError):
    """A chain operation failed."""


class ChainRevert(ChainError):
    """A contract call or transaction reverted.

    `error_name` is the Solidity custom error's name (e.g. ``"RevealMismatch"``), ``"Error"`` for
    a `require` string, ``"Panic"`` for an assertion or arithmetic fault, ``"UnknownError"`` when
    the selector matches no known ABI. `error_args` holds the decoded arguments in order.
    """

    def __init__(
        self, error_name: str, error_args: tuple[Any, ...] = (), data: bytes = b""
    ) -> None:
        self.error_name = error_name
        self.error_args = error_args
        self.data = data
        rendered = ", ".join(_render(arg) for arg in error_args)
        super().__init__(f"reverted with {error_name}({rendered})")


class TransientRpcError(ChainError):
    """The RPC endpoint kept failing with connection errors or timeouts after all retries."""


class ArtifactError(ChainError):
    """The compiled contract artifacts are missing or inconsistent."""


class JournalConflict(ChainError):
    """The submission journal and the chain disagree about an epoch's weights."""


def _render(arg: Any) -> str:
    if isinstance(arg, bytes):
        return "0x" + arg.hex()
    return repr(arg)
