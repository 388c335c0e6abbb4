"""One nonce sequence per account, shared by every thread (and asyncio task) that sends for it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class NonceManager:
    """Hands out consecutive nonces for one account.

    `reserve()` holds the account's lock from choosing the nonce until the transaction is
    accepted by the node, so concurrent senders never pick the same nonce; waiting for
    receipts happens outside the lock. When a send fails the counter is dropped and re-read
    from the chain's pending count, which also repairs gaps left by a crashed process.
    Asyncio callers run the blocking client in `asyncio.to_thread`, which this lock covers.
    """

    def __init__(self, pending_count: Callable[[], int]) -> None:
        self._pending_count = pending_count
        self._lock = threading.Lock()
        self._next: int | None = None

    @contextmanager
    def reserve(self) -> Iterator[int]:
        """Yields the next nonce; it counts as used only if the block exits normally."""
        with self._lock:
            nonce = self._pending_count() if self._next is None else self._next
            try:
                yield nonce
            except BaseException:
                self._next = None
                raise
            self._next = nonce + 1

    def forget(self) -> None:
        """Re-reads the nonce from the chain on next use (after an external send)."""
        with self._lock:
            self._next = None


_REGISTRY_LOCK = threading.Lock()
_MANAGERS: dict[tuple[object, str], NonceManager] = {}


def nonce_manager_for(
    endpoint: object, address: str, pending_count: Callable[[], int]
) -> NonceManager:
    """The process-wide manager of `address` on `endpoint` (the provider object)."""
    key = (endpoint, address.lower())
    with _REGISTRY_LOCK:
        manager = _MANAGERS.get(key)
        if manager is None:
            manager = NonceManager(pending_count)
            _MANAGERS[key] = manager
        return manager
