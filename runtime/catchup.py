"""Catch-up over direct requests: serving one's certified log and fetching a peer's.

A node that is behind asks peers, one after another, for the bundles from the first round it
lacks. It trusts nothing it receives: each bundle is opened and verified (protocol.roundlog)
and applied, and the model hash it reaches must be the certificate's, so a lying peer can only
waste a request, never move a replica off the certified history.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from adapters.storage.logstore import RoundLogStore
from adapters.transport.base import Request, Transport, TransportError
from protocol.errors import MessageRejected
from protocol.roundlog import decode_frames, decode_log_request, encode_frames, encode_log_request

LOG_PROTOCOL = "seedswarm/log/1"
MAX_ROUNDS_PER_REQUEST = 64

_log = logging.getLogger("runtime.catchup")


def log_handler(store: RoundLogStore, max_bytes: int) -> Callable[[Request], Awaitable[bytes]]:
    """A request handler answering log requests from `store` within `max_bytes`."""

    async def answer(request: Request) -> bytes:
        from_round, max_rounds = decode_log_request(request.data)
        limit = min(max_rounds, MAX_ROUNDS_PER_REQUEST)
        return encode_frames(store.consecutive_from(from_round, limit, max_bytes - 4))

    return answer


async def fetch_bundles(
    transport: Transport,
    peers: Sequence[str],
    from_round: int,
    *,
    timeout: float,  # noqa: ASYNC109 - bounds each request
) -> list[bytes]:
    """Raw bundles from the first peer in `peers` that has round `from_round` (else [])."""
    request = encode_log_request(from_round, MAX_ROUNDS_PER_REQUEST)
    for peer in peers:
        try:
            raw = await transport.request(peer, LOG_PROTOCOL, request, timeout=timeout)
            bundles = decode_frames(raw)
        except (TransportError, MessageRejected) as exc:
            _log.info("log request to %s failed: %s", peer, exc)
            continue
        if bundles:
            return bundles
    return []
