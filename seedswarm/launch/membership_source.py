"""A live node's membership, read from the network's Registry.

A node reads the Registry (no account needed: views and events only) into a
`MembershipTimeline` (protocol.membership): the snapshot of every epoch from the one of the
replica's round (a restarting node replays older rounds) to the current one
(`ChainMembership.timeline`); then `feed` re-reads it at every epoch boundary and enters each
settled snapshot at the epoch's first round.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adapters.chain.chain_errors import ChainError, TransientRpcError
from adapters.chain.registry_membership import EpochMembership
from protocol.errors import ConfigError
from protocol.membership import DEFAULT_KEEP, Membership, MembershipSchedule, MembershipTimeline
from seedswarm.launch.node_plan import NodePlan

if TYPE_CHECKING:
    from adapters.chain.deployment import Deployment
    from adapters.chain.registry_contract import RegistryClient


@dataclass(frozen=True)
class ChainMembership:
    """The Registry of one deployment, read-only, with its epoch schedule."""

    registry: RegistryClient
    schedule: MembershipSchedule

    @classmethod
    def connect(cls, chain_url: str, deployment: Deployment) -> ChainMembership:
        """Binds to the Registry of `deployment` on the chain at `chain_url`."""
        from adapters.chain.backends import connect
        from adapters.chain.registry_contract import RegistryClient

        registry = RegistryClient.read_only(connect(chain_url), deployment.registry)
        return cls(registry, MembershipSchedule.from_params(registry.network_params()))

    def read(self, at: int) -> Membership:
        """The membership as it stood before chain timestamp `at`."""
        from adapters.chain.registry_membership import read_membership

        return read_membership(self.registry, at)

    def chain_now(self) -> int:
        """The latest block's timestamp."""
        return self.registry.latest_timestamp()

    def current(self) -> EpochMembership:
        """The snapshot of the epoch the chain is in now (genesis before genesis).

        Before the chain reaches the snapshot's time the answer is provisional; `follow`
        re-reads it once settled and reports a difference.
        """
        epoch = self.schedule.epoch_at(self.chain_now())
        at = self.schedule.epoch_start(epoch)
        return EpochMembership(epoch, at, self.schedule.first_round(epoch), self.read(at))

    async def follow(self, current: Membership,
                     on_change: Callable[[EpochMembership], None]) -> None:
        """Call `on_change` whenever an epoch boundary changes the membership (until cancelled)."""
        from adapters.chain.registry_membership import watch_membership

        await watch_membership(self.read, self.chain_now, self.schedule, on_change,
                               current=current)


    def timeline(self, round_index: int, keep: int = DEFAULT_KEEP) -> MembershipTimeline:
        """A timeline holding the snapshots of the epochs of `round_index` (the replica's)
        through the current one (the last `keep` of them).

        A snapshot the chain has not passed yet (the replica ahead of chain time) is
        provisional; `feed` replaces it once settled.
        """
        current = self.current()
        replica_epoch = self.schedule.epoch_of_round(round_index)
        last = max(current.epoch, replica_epoch)
        first = max(min(current.epoch, replica_epoch), last - keep + 1)
        timeline = MembershipTimeline(keep=keep)
        for epoch in range(first, last + 1):
            membership = (current.membership if epoch == current.epoch
                          else self.read(self.schedule.epoch_start(epoch)))
            timeline.set(self.schedule.first_round(epoch), membership)
        return timeline

    async def feed(self, timeline: MembershipTimeline) -> None:
        """Enter every epoch's settled snapshot into `timeline` at the epoch's first round,
        as the chain passes each boundary (until cancelled)."""
        from adapters.chain.registry_membership import watch_membership

        def enter(snapshot: EpochMembership) -> None:
            timeline.set(snapshot.first_round, snapshot.membership)

        await watch_membership(self.read, self.chain_now, self.schedule, enter,
                               only_changes=False)


def resolve_timeline(
    plan: NodePlan, round_index: int
) -> tuple[MembershipTimeline, ChainMembership]:
    """The timeline a node starts with (blocking) and the source to `feed` it from."""
    with _reaching(plan.chain_url):
        source = ChainMembership.connect(plan.chain_url, plan.deployment)
        return source.timeline(round_index), source


def resolve_membership(plan: NodePlan) -> Membership:
    """The membership in force now, as the Registry's snapshot of the current epoch has it."""
    with _reaching(plan.chain_url):
        return ChainMembership.connect(plan.chain_url, plan.deployment).current().membership


@contextlib.contextmanager
def _reaching(url: str) -> Iterator[None]:
    """A chain that does not answer at start is one line naming it and what to check."""
    try:
        yield
    except TransientRpcError as exc:
        raise ConfigError(f"cannot reach the chain at {url}: is the network's RPC endpoint up "
                          "and reachable from here? (`seedswarm doctor` checks it)") from exc


async def watch_chain(source: ChainMembership, url: str, limit_s: float,
                      interval_s: float) -> None:
    """Return only to raise ChainError once the chain at `url` has not answered for
    `limit_s` seconds: the node then exits non-zero instead of living on without its chain."""
    loop = asyncio.get_running_loop()
    last_answer = loop.time()
    while True:
        await asyncio.sleep(interval_s)
        try:
            await asyncio.to_thread(source.chain_now)
            last_answer = loop.time()
        except Exception as exc:  # any RPC failure: the chain is unreachable from here
            silent = loop.time() - last_answer
            if silent >= limit_s:
                raise ChainError(f"lost the chain at {url} for {silent:.0f} s ({exc}): is its "
                                 "RPC endpoint up? (the node exits so that its supervisor "
                                 "restarts it)") from exc
