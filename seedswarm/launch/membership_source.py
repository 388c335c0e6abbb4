"""A live node's membership: from the Registry when the node has a chain, else its settings.

Nodes with `chain` and `deployment` settings read the Registry (no account needed: views and
events only) into a `MembershipTimeline` (protocol.membership): the snapshot of every epoch from
the one of the replica's round (a restarting node replays older rounds) to the current one
(`ChainMembership.timeline`); then `feed` re-reads it at every epoch boundary and enters each
settled snapshot at the epoch's first round. Chainless runs fall back to the settings file's
`miners` / `validators` lists, which are then fixed for the whole run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adapters.chain.registry_membership import EpochMembership
from protocol.domain_types import PublicKey, Wei
from protocol.errors import ConfigError
from protocol.membership import DEFAULT_KEEP, Membership, MembershipSchedule, MembershipTimeline
from seedswarm.launch.settings import NodeSettings

if TYPE_CHECKING:
    from adapters.chain.registry_contract import RegistryClient


@dataclass(frozen=True)
class ChainMembership:
    """The Registry of one deployment, read-only, with its epoch schedule."""

    registry: RegistryClient
    schedule: MembershipSchedule

    @classmethod
    def connect(cls, settings: NodeSettings) -> ChainMembership:
        """Binds to the node's chain and deployment (ConfigError if it has none)."""
        if not settings.chain or settings.deployment is None:
            raise ConfigError("reading membership from the chain needs chain and deployment")
        from adapters.chain import Deployment, RegistryClient, connect

        deployment = Deployment.load(settings.deployment)
        registry = RegistryClient.read_only(connect(settings.chain), deployment.registry)
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


def settings_membership(settings: NodeSettings) -> Membership:
    """The fallback for chainless runs: the settings file's lists."""
    return Membership.of((PublicKey(bytes.fromhex(k)) for k in settings.miners),
                         ((PublicKey(bytes.fromhex(k)), Wei(s)) for k, s in settings.validators))


def has_chain(settings: NodeSettings) -> bool:
    """Whether the node reads its membership from the chain."""
    return bool(settings.chain) and settings.deployment is not None


def resolve_timeline(
    settings: NodeSettings, round_index: int
) -> tuple[MembershipTimeline, ChainMembership | None]:
    """The timeline a node starts with (blocking) and, with a chain, the source to `feed` it
    from: a node without a chain gets its settings' table for every round."""
    if has_chain(settings):
        source = ChainMembership.connect(settings)
        return source.timeline(round_index), source
    return MembershipTimeline.constant(resolve_membership(settings)), None


def resolve_membership(settings: NodeSettings) -> Membership:
    """The membership a node starts with: the Registry's when it has a chain, else settings."""
    if has_chain(settings):
        return ChainMembership.connect(settings).current().membership
    membership = settings_membership(settings)
    if not membership.validators:
        raise ConfigError("validators: a node without a chain needs at least one validator")
    return membership
