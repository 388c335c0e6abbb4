"""Who takes part in which round: the membership as a per-round consensus input.

A `Membership` is one table: the registered miners' node keys and the validators' (node key,
stake). A `MembershipTimeline` says which table governs each round: a small sorted map
``first_round -> Membership`` where round r is judged by the entry with the largest
``first_round <= r``. Every node must look a round up the same way, so a table is entered at
the first round it governs (for a chain-backed network, the first round of the epoch whose
snapshot it is, see adapters.chain.registry_membership), never "from now on".

The map is bounded: only the latest `keep` entries are kept. A round older than the oldest kept
entry is answered with that entry, which is right only if the membership did not change
in between; callers keep `keep` above the number of epochs a node can be asked to judge
(its replay and catch-up distance, in epochs).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from protocol.domain_types import PublicKey, Wei
from protocol.errors import ConsensusError
from protocol.settlement.params import NetworkParams

KEY_BYTES = 32
DEFAULT_KEEP = 16
"""Entries a timeline keeps (one per epoch at most: sixteen epochs of history)."""

Stakes = Sequence[tuple[PublicKey, Wei]]
"""(validator public key, stake) pairs."""

StakesAt = Callable[[int], Stakes]
"""The stake table in force for a round index."""

MinersAt = Callable[[int], Collection[PublicKey]]
"""The registered miners' keys for a round index."""


class MembershipError(ConsensusError):
    """A membership table or timeline is malformed."""


@dataclass(frozen=True)
class Membership:
    """Registered miners' node keys and validators' (node key, stake in wei), sorted by key."""

    miners: tuple[PublicKey, ...]
    validators: tuple[tuple[PublicKey, Wei], ...]

    def __post_init__(self) -> None:
        keys = list(self.miners) + [k for k, _ in self.validators]
        if any(len(k) != KEY_BYTES for k in keys):
            raise MembershipError("membership keys must be 32-byte node keys")
        if list(self.miners) != sorted(set(self.miners)):
            raise MembershipError("miners must be distinct and sorted by key (use Membership.of)")
        vkeys = [k for k, _ in self.validators]
        if vkeys != sorted(set(vkeys)) or any(s <= 0 for _, s in self.validators):
            raise MembershipError("validators must be distinct, sorted by key, with positive stake")

    @classmethod
    def of(
        cls, miners: Iterable[PublicKey], validators: Iterable[tuple[PublicKey, Wei]]
    ) -> Membership:
        """The canonical form of any listing (sorted by key, zero stakes dropped)."""
        table = sorted((PublicKey(bytes(k)), Wei(int(s))) for k, s in validators if s > 0)
        return cls(tuple(sorted({PublicKey(bytes(k)) for k in miners})), tuple(table))

    @property
    def total_stake(self) -> Wei:
        """Sum of the validators' stakes in wei."""
        return Wei(sum(s for _, s in self.validators))


class MembershipTimeline:
    """The membership in force for each round; see the module docstring.

    `revision` grows by one at every change, so holders of derived state (a chain's miner
    slots) can tell when to re-read.
    """

    def __init__(
        self, entries: Iterable[tuple[int, Membership]] = (), *, keep: int = DEFAULT_KEEP
    ) -> None:
        if keep < 1:
            raise MembershipError(f"a timeline keeps at least one entry, not {keep}")
        self.keep = keep
        self.revision = 0
        self._firsts: list[int] = []
        self._tables: list[Membership] = []
        self._known: tuple[int, frozenset[bytes]] = (-1, frozenset())
        for first_round, membership in entries:
            self.set(first_round, membership)

    @classmethod
    def constant(cls, membership: Membership) -> MembershipTimeline:
        """One table for every round (chainless networks, tests)."""
        return cls([(0, membership)])

    def set(self, first_round: int, membership: Membership) -> bool:
        """Make `membership` govern rounds from `first_round` up to the next entry.

        Idempotent; replaces an entry at the same `first_round` (a provisional read superseded
        by the settled one). Every entry is kept as given, even one equal to its predecessor:
        dropping it would make the answer for its rounds depend on the order entries arrive
        in. Returns whether anything changed. Beyond `keep` entries the oldest go.
        """
        if first_round < 0:
            raise MembershipError(f"first round must be non-negative, got {first_round}")
        index = bisect.bisect_left(self._firsts, first_round)
        if index < len(self._firsts) and self._firsts[index] == first_round:
            if self._tables[index] == membership:
                return False
            self._tables[index] = membership
        else:
            if len(self._firsts) >= self.keep and index == 0:
                return False  # older than everything kept: it would be dropped at once
            self._firsts.insert(index, first_round)
            self._tables.insert(index, membership)
            del self._firsts[: -self.keep], self._tables[: -self.keep]
        self.revision += 1
        return True

    def at(self, round_index: int) -> Membership:
        """The table governing `round_index` (the oldest kept one for older rounds)."""
        if not self._firsts:
            raise MembershipError("the membership timeline is empty")
        index = bisect.bisect_right(self._firsts, round_index) - 1
        return self._tables[max(index, 0)]

    def validators_at(self, round_index: int) -> tuple[tuple[PublicKey, Wei], ...]:
        """The stake table of `round_index`."""
        return self.at(round_index).validators

    def miners_at(self, round_index: int) -> tuple[PublicKey, ...]:
        """The registered miners of `round_index`."""
        return self.at(round_index).miners

    def knows(self, key: bytes) -> bool:
        """Whether `key` is a miner or validator in any kept entry (the rounds this node may
        still hear about): what a transport asks to keep registered members apart from
        strangers. Cheap per call: the key set is rebuilt only when the timeline changes."""
        return bytes(key) in self.member_keys()

    def member_keys(self) -> frozenset[bytes]:
        """Every miner and validator key of the kept entries, rebuilt only when the timeline
        changes (see `revision`)."""
        revision, known = self._known
        if revision != self.revision:
            known = frozenset(
                bytes(k)
                for table in self._tables
                for k in (*table.miners, *(v for v, _ in table.validators))
            )
            self._known = (self.revision, known)
        return known

    def entries(self) -> list[tuple[int, Membership]]:
        """(first_round, membership) of every kept entry, oldest first."""
        return list(zip(self._firsts, self._tables, strict=True))

    @property
    def latest(self) -> Membership:
        """The newest table (what the node's peers list is built from)."""
        if not self._tables:
            raise MembershipError("the membership timeline is empty")
        return self._tables[-1]

    def __len__(self) -> int:
        return len(self._firsts)


def stakes_at(validators: Stakes | MembershipTimeline | StakesAt) -> StakesAt:
    """A per-round stake lookup from a timeline, a lookup, or one fixed table (every round)."""
    if isinstance(validators, MembershipTimeline):
        return validators.validators_at
    if callable(validators):
        return validators
    fixed = tuple(validators)
    return lambda _round: fixed


def miners_at(miners: Collection[PublicKey] | MembershipTimeline | MinersAt) -> MinersAt:
    """A per-round miner lookup from a timeline, a lookup, or one fixed set (every round)."""
    if isinstance(miners, MembershipTimeline):
        return miners.miners_at
    if callable(miners):
        return miners
    fixed = frozenset(miners)
    return lambda _round: fixed


@dataclass(frozen=True)
class MembershipSchedule:
    """The chain's epoch schedule in chain seconds (Registry.params); pure arithmetic."""

    genesis_time: int
    round_length: int
    epoch_length: int
    """Rounds per epoch."""

    @classmethod
    def from_params(cls, params: NetworkParams) -> MembershipSchedule:
        return cls(params.genesis_time, params.round_length, params.epoch_length)

    @property
    def epoch_duration(self) -> int:
        return self.round_length * self.epoch_length

    def epoch_of_round(self, round_index: int) -> int:
        """The epoch holding round `round_index`."""
        return round_index // self.epoch_length

    def epoch_start(self, epoch: int) -> int:
        """Chain timestamp at which `epoch` starts (Registry.epochStart)."""
        return self.genesis_time + epoch * self.epoch_duration

    def epoch_at(self, timestamp: int) -> int:
        """The epoch containing `timestamp`; before genesis, epoch 0 (Registry.epochAt)."""
        if timestamp <= self.genesis_time:
            return 0
        return (timestamp - self.genesis_time) // self.epoch_duration

    def snapshot_time(self, round_index: int) -> int:
        """The consensus rule: round `round_index` uses the membership as it stood just
        before the start of its epoch (genesis for epoch 0)."""
        return self.epoch_start(self.epoch_of_round(round_index))

    def first_round(self, epoch: int) -> int:
        """The first round a snapshot of `epoch` applies to."""
        return epoch * self.epoch_length
