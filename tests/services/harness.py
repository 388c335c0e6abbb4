"""What the in-process service tests share: keys, in-memory transports, and a run until every
node holds a given round."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from adapters.transport.base import Limits
from adapters.transport.memory import MemoryNetwork, MemoryTransport
from node.service.miner import MinerService
from protocol.identity import NodeKey
from validator.service.validator import ValidatorService

LIMITS = Limits(max_message_bytes=1 << 20)
"""Bundles carry many envelopes: the transport limit the devnet uses."""


def key(label: str) -> NodeKey:
    """A reproducible node key named `label`."""
    return NodeKey.from_bytes(hashlib.sha256(label.encode()).digest())


def transports(network_id: str) -> Callable[[NodeKey], MemoryTransport]:
    """A fresh in-memory medium: call the result with a key for that node's transport."""
    medium = MemoryNetwork()

    def transport(node: NodeKey) -> MemoryTransport:
        return MemoryTransport(medium, node.peer_id, network_id=network_id, limits=LIMITS)

    return transport


async def run_until_round(
    services: Sequence[MinerService | ValidatorService],
    rounds: int,
    *,
    limit_s: float,
    extra: Sequence[Coroutine[Any, Any, None]] = (),
) -> None:
    """Run `services` (and the `extra` tasks) until every replica holds round `rounds`, then
    stop them; TimeoutError after `limit_s` seconds."""
    await run_until(services, lambda: all(s.follower.replica.round_index >= rounds
                                          for s in services), limit_s=limit_s, extra=extra)


async def run_until(
    services: Sequence[MinerService | ValidatorService],
    done: Callable[[], bool],
    *,
    limit_s: float,
    extra: Sequence[Coroutine[Any, Any, None]] = (),
) -> None:
    """Run `services` (and the `extra` tasks) until `done()` holds, then stop them;
    TimeoutError after `limit_s` seconds."""
    for s in services:
        await s.transport.start()
    try:
        async with asyncio.timeout(limit_s), asyncio.TaskGroup() as group:
            tasks = [group.create_task(s.run()) for s in services]
            tasks += [group.create_task(job) for job in extra]
            while not done():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            for task in tasks:
                task.cancel()
    finally:
        for s in services:
            await s.transport.stop()
