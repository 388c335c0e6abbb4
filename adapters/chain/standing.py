"""Where one account stands in the Registry: role, stake, slot, unbonding, and whether it counts.

A registration counts from the first epoch that starts after it: every round reads the
membership as it stood before its epoch's start (adapters.chain.registry_membership). So an
account registered in the middle of epoch e is registered but not active until epoch e + 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.chain.registry_contract import RegistryClient
from protocol.domain_types import EvmAddress, PublicKey, Wei
from protocol.settlement.params import Role


@dataclass(frozen=True)
class Standing:
    """One account in the Registry, read at `chain_time`."""

    account: EvmAddress
    role: Role
    stake: Wei
    slot: int | None
    """Miners: the slot the account occupies."""
    node_key: PublicKey
    """The Ed25519 key bound to the account (zeros when unregistered)."""
    unbonding: Wei
    release_time: int
    """When the unbonding stake may be withdrawn (chain seconds; 0 when none)."""
    chain_time: int
    epoch: int
    active: bool
    """The registration counts in the current epoch's membership."""
    active_at: int | None
    """Registered but not active yet: the chain time from which it counts."""

    @property
    def registered(self) -> bool:
        return self.role != Role.NONE

    @property
    def wait_s(self) -> int:
        """Seconds until the registration counts (0 when it does, or there is none)."""
        return max(0, self.active_at - self.chain_time) if self.active_at is not None else 0


def read_standing(registry: RegistryClient, account: EvmAddress) -> Standing:
    """The Registry's record of `account`, and whether it counts in the current epoch."""
    role = registry.role_of(account)
    unbonding, release = registry.unbonding_of(account)
    slot = registry.miner_slot_of(account) if role == Role.MINER else None
    now = registry.latest_timestamp()
    epoch = registry.current_epoch()
    start = registry.epoch_start(epoch)
    active, active_at = False, None
    if role != Role.NONE:
        if now < start:  # before genesis: whoever registered before it counts from round 0
            active_at = start
        elif _in_snapshot(registry, account, role, slot, start):
            active = True
        else:
            active_at = registry.epoch_start(epoch + 1)
    return Standing(
        account=account, role=role, stake=registry.stake_of(account), slot=slot,
        node_key=registry.node_key_of(account), unbonding=unbonding, release_time=release,
        chain_time=now, epoch=epoch, active=active, active_at=active_at,
    )


def _in_snapshot(
    registry: RegistryClient, account: EvmAddress, role: Role, slot: int | None, at: int
) -> bool:
    """`account` was a member, in its role, as the Registry stood before chain time `at`."""
    if role == Role.VALIDATOR:
        return registry.validator_stake_at(at, account) > 0
    if slot is None or slot >= registry.miner_slot_count():
        return False
    return registry.miners_in_range_at(slot, slot + 1, at) == [account]
