"""Retries with exponential backoff for RPC failures that are worth retrying."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import requests.exceptions
from web3.exceptions import ProviderConnectionError, TimeExhausted

from adapters.chain.chain_errors import TransientRpcError

T = TypeVar("T")

_TRANSIENT: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    ProviderConnectionError,
    TimeExhausted,
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a transient failure."""

    attempts: int = 5
    initial_delay: float = 0.1
    max_delay: float = 2.0
    multiplier: float = 2.0

    def delays(self) -> list[float]:
        """The sleeps between consecutive attempts."""
        out: list[float] = []
        delay = self.initial_delay
        for _ in range(self.attempts - 1):
            out.append(min(delay, self.max_delay))
            delay *= self.multiplier
        return out


def is_transient(exc: BaseException) -> bool:
    """Connection errors and timeouts: the request may succeed if sent again."""
    return isinstance(exc, _TRANSIENT)


def call_with_retries(
    action: Callable[[], T],
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Runs `action`, retrying transient failures; other errors propagate at once."""
    last: BaseException | None = None
    for delay in [*policy.delays(), None]:
        try:
            return action()
        except Exception as exc:
            if not is_transient(exc):
                raise
            last = exc
        if delay is not None:
            sleep(delay)
    raise TransientRpcError(
        f"RPC still failing after {policy.attempts} attempts: {last!r}"
    ) from last
