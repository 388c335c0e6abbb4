"""A live node's membership: from the Registry when the node has a chain, else its settings.

Nodes with `chain` and `deployment` settings read the Registry (no account needed: views and
events only) at the snapshot of the current epoch (see protocol.chain.membership), then
`follow` re-reads it at every epoch boundary. Chainless runs fall back to the settings file's
`miners` / `validators` lists, which are then fixed for the whole run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from protocol.chain.membership import EpochMembership, Membership, MembershipSchedule
from protocol.errors import ConfigError
from seedswarm.devnet.settings import NodeSettings

if TYPE_CHECKING:
    from protocol.chain.registry import RegistryClient


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
        from protocol.chain import Deployment, RegistryClient, connect

        deployment = Deployment.load(settings.deployment)
        registry = RegistryClient.read_only(connect(settings.chain), deployment.registry)
        return cls(registry, MembershipSchedule.from_params(registry.network_params()))

    def read(self, at: int) -> Membership:
        """The membership as it stood before chain timestamp `at`."""
        from protocol.chain.membership import read_membership

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
        from protocol.chain.membership import watch_membership

        await watch_membership(self.read, self.chain_now, self.schedule, on_change,
                               current=current)


def settings_membership(settings: NodeSettings) -> Membership:
    """The fallback for chainless runs: the settings file's lists."""
    return Membership.of((bytes.fromhex(k) for k in settings.miners),
                         ((bytes.fromhex(k), s) for k, s in settings.validators))


def has_chain(settings: NodeSettings) -> bool:
    """Whether the node reads its membership from the chain."""
    return bool(settings.chain) and settings.deployment is not None


def resolve_membership(settings: NodeSettings) -> Membership:
    """The membership a node starts with: the Registry's when it has a chain, else settings."""
    if has_chain(settings):
        return ChainMembership.connect(settings).current().membership
    membership = settings_membership(settings)
    if not membership.validators:
        raise ConfigError("validators: a node without a chain needs at least one validator")
    return membership
