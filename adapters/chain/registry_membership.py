"""Who takes part, read from the Registry: miners' node keys, validators' keys and stakes.

A live node's membership is consensus input: the validator stake table elects every round's
leader and decides finality, and the miner set decides who may contribute and how the data is
assigned. Two nodes must therefore use the same table for the same round, whatever block each
happens to read. They do by reading the Registry's timestamped snapshots ("as it stood before
timestamp T") at a T that is a pure function of the round index (`snapshot_time`), and only once
the chain has passed T (`is_settled`): after that no block can change the answer.

Round r uses the snapshot at the start of its epoch, `genesis + epoch(r) * epoch_duration`
in chain seconds (for epoch 0 that is the genesis time: whoever registered before genesis).
The same instant is the end of the previous epoch, which the Incentives contract settles
against, so the set that leads an epoch is the set its predecessor's rewards were paid with.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from adapters.chain.chain_errors import ChainError
from adapters.chain.registry_contract import ZERO_ADDRESS, Registration, RegistryClient
from protocol.domain_types import EvmAddress, PublicKey
from protocol.membership import Membership, MembershipError, MembershipSchedule
from protocol.settlement.params import Role

__all__ = ["EpochMembership", "is_settled", "read_membership", "watch_membership"]

_log = logging.getLogger("adapters.chain.registry_membership")


def is_settled(registry: RegistryClient, at: int) -> bool:
    """True once the chain's latest block is stamped at or after `at`: blocks only move
    forward in time, so the snapshot before `at` can no longer change."""
    return registry.latest_timestamp() >= at


def read_membership(registry: RegistryClient, at: int | None = None) -> Membership:
    """The membership now (`at` None), or as it stood before chain timestamp `at`.

    With `at`, every reader gets the same answer once `is_settled(registry, at)`; before that
    the answer is provisional (a later block stamped before `at` may still change it).
    """
    if at is None:
        return _read_latest(registry)
    slots = registry.miner_slot_count()
    occupants = registry.miners_in_range_at(0, slots, at) if slots else []
    # Read after the views, so the events cover every block those views could have seen.
    registrations = registry.registrations()
    miners = [_key_at(registrations, a, Role.MINER, at) for a in occupants if a != ZERO_ADDRESS]
    candidates = sorted({r.account for r in registrations
                         if r.role == Role.VALIDATOR and r.timestamp < at})
    stakes = registry.validator_stakes_at(candidates, at)
    validators = [(_key_at(registrations, a, Role.VALIDATOR, at), s)
                  for a, s in stakes.items() if s > 0]
    return Membership.of(miners, validators)


def _read_latest(registry: RegistryClient) -> Membership:
    miners = [registry.node_key_of(a) for a in registry.miner_slots() if a != ZERO_ADDRESS]
    validators = [(registry.node_key_of(a), registry.stake_of(a)) for a in registry.validators()]
    return Membership.of(miners, validators)


def _key_at(
    registrations: list[Registration], account: EvmAddress, role: Role, at: int
) -> PublicKey:
    """The key `account` bound in its latest registration (in `role`) stamped before `at`."""
    bound = [r.node_key for r in registrations
             if r.account == account and r.role == role and r.timestamp < at]
    if not bound:
        raise ChainError(f"{account} holds a {role.name.lower()} seat before {at} "
                         "but no registration event precedes it")
    return bound[-1]


# -- refresh ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EpochMembership:
    """A settled membership and the rounds it governs (from `first_round` on)."""

    epoch: int
    snapshot_time: int
    first_round: int
    membership: Membership


async def watch_membership(
    read: Callable[[int], Membership],
    chain_now: Callable[[], int],
    schedule: MembershipSchedule,
    on_change: Callable[[EpochMembership], None],
    *,
    current: Membership | None = None,
    poll_s: float = 1.0,
    max_sleep_s: float = 30.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    only_changes: bool = True,
) -> None:
    """Re-read the membership at every epoch boundary; call `on_change` when it differs
    (with `only_changes` False: after every read, so a timeline can replace a provisional
    entry of that epoch even when the table equals the previous epoch's).

    `read(at)` and `chain_now()` block (chain calls) and run in a worker thread. A boundary is
    read once the chain has passed it (`is_settled`), so the table is the one every node reads;
    `current` is what the caller already applies (a startup read, possibly provisional).
    Chain errors are logged and retried at the next poll. Runs until cancelled.
    """
    read_at: int | None = None
    while True:
        try:
            now = await asyncio.to_thread(chain_now)
            epoch = schedule.epoch_at(now)
            at = schedule.epoch_start(epoch)
            if now >= at and at != read_at:
                membership = await asyncio.to_thread(read, at)
                read_at = at
                if membership != current or not only_changes:
                    current = membership
                    on_change(EpochMembership(epoch, at, schedule.first_round(epoch), membership))
            following = at if now < at else schedule.epoch_start(epoch + 1)
            delay = min(max(float(following - now), poll_s), max_sleep_s)
        except (ChainError, MembershipError, OSError) as exc:
            _log.warning("membership refresh failed, retrying: %r", exc)
            delay = poll_s
        await sleep(delay)
