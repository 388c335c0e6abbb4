"""What the in-process service tests share: keys, in-memory transports, a network whose round
length is measured on this machine, and a run until every node holds a given round.

Windows and limits derive from the measured round length, never from seconds tuned on an idle
machine: the same test must hold on a busy one."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from adapters.transport.base import Limits
from adapters.transport.memory import MemoryNetwork, MemoryTransport
from node.service.miner import MinerService
from protocol.identity import NodeKey
from protocol.netconfig import NetworkConfig
from seedswarm.devnet.calibration import cores, measure_round
from seedswarm.devnet.devnet_genesis import network_config, write_base
from seedswarm.devnet.spec import DevnetSpec
from seedswarm.launch.settings import DEFAULT_WORK_FRACTION
from validator.service.validator import ValidatorService

LIMITS = Limits(max_message_bytes=1 << 20)
SLACK_ROUNDS = 12
"""How many rounds' worth of time a run may take beyond the rounds it runs."""


def measured_network(spec: DevnetSpec, base: Path) -> NetworkConfig:
    """`spec`'s devnet network with its genesis written at `base` and its round length measured
    now (seedswarm.devnet.calibration): every service of the test shares this one process."""
    model_hash, _ = write_base(spec, base)
    cost = measure_round(network_config(spec, model_hash), base, spec.total_miners)
    length = cost.round_length(spec.total_miners + spec.validators, DEFAULT_WORK_FRACTION,
                               cores())
    return network_config(replace(spec, round_length=length), model_hash)


def start_time(network: NetworkConfig) -> float:
    """A genesis for services about to be built: one round from now, for loading their
    models (slow on a busy machine), plus two seconds."""
    return time.time() + network.round_length + 2.0


def limit_s(network: NetworkConfig, rounds: int) -> float:
    """Time for `rounds` rounds and the slack a busy machine needs, counted in rounds."""
    return (rounds + SLACK_ROUNDS) * network.round_length
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
