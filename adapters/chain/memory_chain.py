"""The Registry and Incentives rules a validator's epoch duties meet, held in process.

`MemoryChain` keeps what `settlement_port.SettlementPort` exposes (the schedule, miner slots,
validator stakes, commitments, reveals, settlement and the credits it makes) and refuses what
the contracts refuse, with the same `ChainRevert` error names and arguments, checked in the
contracts' order. Settlement is computed by `protocol.settlement.median.settle_reference`, the
reference the contract itself is tested against.

Time is the injected clock, read once per call and floored to whole seconds as a block
timestamp is. Stakes and slot owners are recorded with that time, and settlement reads them
"as they stood before the epoch's end", as the contracts' snapshot views do, so a change made
after an epoch ended cannot swing that epoch.

Stake leaving the network unbonds for the network's unbonding delay before `withdraw` pays it,
and a miner's bond is slashed by a validator stake-majority (`vote_slash`), as in the Registry.

Deliberately left out (nothing the port exposes depends on them): chunked settlement (an epoch
settles in one call, SETTLING is never observed), the Merkle settlement path, claiming and the
token, miner performance and eviction, the validator-set cap and replacement, gas, nonces and
pending transactions.
"""

from __future__ import annotations

import functools
import math
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Concatenate, Generic, ParamSpec, TypeVar

from eth_utils.address import to_checksum_address

from adapters.chain.chain_errors import ChainError, ChainRevert
from protocol.domain_types import PublicKey, Wei
from protocol.errors import InvalidWeights
from protocol.settlement.median import settle_reference
from protocol.settlement.params import (
    BPS,
    WEIGHT_SCALE,
    Commitment,
    EconomicParams,
    EpochStatus,
    EpochWindows,
    NetworkParams,
    Role,
)
from protocol.settlement.slashing import slash_passes
from protocol.settlement.weight_vector import commit_digest

_NO_DIGEST = bytes(32)

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class _History(Generic[T]):
    """Values stamped with the time they were set, as the Registry's checkpoints."""

    unset: T
    points: list[tuple[int, T]] = field(default_factory=list)

    def push(self, at: int, value: T) -> None:
        if self.points:
            at = max(at, self.points[-1][0])  # Registry._push: keys never go back
        if self.points and self.points[-1][0] == at:
            self.points[-1] = (at, value)  # one value per timestamp: the last one set
        else:
            self.points.append((at, value))

    def before(self, at: int) -> T:
        """The value as it stood before timestamp `at` (`unset` if nothing was set by then)."""
        for stamp, value in reversed(self.points):
            if stamp < at:
                return value
        return self.unset


def _transaction(
    method: Callable[Concatenate[MemoryChain, P], R],
) -> Callable[Concatenate[MemoryChain, P], R]:
    """One call, one transaction: validators submit from their own threads, and a block
    applies transactions one after another, never interleaved."""

    @functools.wraps(method)
    def run(chain: MemoryChain, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with chain._lock:
            return method(chain, *args, **kwargs)

    return run


@dataclass
class _Participant:
    role: Role
    node_key: bytes
    stake: int
    slot: int = -1


class MemoryChain:
    """One network's Registry and Incentives state, for any number of accounts.

    Accounts are EVM addresses (any case); they are compared checksummed, and the commit digest
    binds them exactly as the contract's `msg.sender`.
    """

    def __init__(
        self, network: NetworkParams, economics: EconomicParams, clock: Callable[[], float]
    ) -> None:
        """`clock`: the chain's time in seconds (a test's fake clock, or the wall clock)."""
        if (network.round_length == 0 or network.epoch_length == 0 or network.max_miners == 0
                or network.max_validators == 0):
            raise ChainRevert("InvalidNetworkParams")
        if (economics.miner_share_bps > BPS or economics.kappa_bps >= BPS
                or economics.commit_window == 0 or economics.reveal_window == 0):
            raise ChainRevert("InvalidEconomicParams")
        self.network = network
        self.economics = economics
        self.chain_id = secrets.token_hex(8)
        """Tells journals of two chains apart (see SubmissionJournal's scope)."""
        self._clock = clock
        self._lock = threading.RLock()
        self._participants: dict[str, _Participant] = {}
        self._key_owner: dict[bytes, str] = {}
        self._validators: list[str] = []
        self._stake_history: dict[str, _History[int]] = {}
        self._total = 0
        self._total_history = _History(0)
        self._slots: list[str | None] = []
        self._free_slots: list[int] = []
        self._slot_history: list[_History[str | None]] = []
        self._commitments: dict[tuple[int, str], Commitment] = {}
        self._revealed: dict[tuple[int, str], tuple[int, ...]] = {}
        self._voters: dict[int, list[str]] = {}
        self._status: dict[int, EpochStatus] = {}
        self._claimable: dict[str, int] = {}
        self._unbonding: dict[str, tuple[int, int]] = {}  # account -> (amount, release time)
        self._bond_key: dict[str, bytes] = {}  # account -> key its miner bond was posted under
        self._banned_keys: set[bytes] = set()
        self._bonded_under: dict[bytes, str] = {}  # node key -> last account bonded under it
        self._slash_support: dict[tuple[str, int, bytes], int] = {}
        self._slash_voted: set[tuple[str, int, bytes, str]] = set()
        self._slash_done: set[tuple[str, int, bytes]] = set()
        self.total_slashed = 0
        """Stake burned by slashes so far (Registry.totalSlashed)."""

    # -- time and schedule --------------------------------------------------------------

    def block_time(self) -> int:
        """The timestamp a transaction made now carries (the clock, in whole seconds)."""
        return math.floor(self._clock())

    def epoch_end(self, epoch: int) -> int:
        """Registry.epochEnd: genesis + (epoch + 1) * round length * epoch length."""
        return self.network.genesis_time + (epoch + 1) * self.network.epoch_duration

    def windows(self, epoch: int) -> EpochWindows:
        """Incentives.windows: commit from the epoch's end, then reveal, then settlement."""
        commit = self.epoch_end(epoch)
        reveal = commit + self.economics.commit_window
        return EpochWindows(commit, reveal, reveal + self.economics.reveal_window)

    # -- registry -----------------------------------------------------------------------

    @_transaction
    def register_validator(self, account: str, node_key: bytes, stake: int) -> None:
        """Registry.registerValidator (the set is not capped here)."""
        who = self._newcomer(account, node_key, stake, self.network.min_validator_stake)
        now = self.block_time()
        self._participants[who] = _Participant(Role.VALIDATOR, node_key, stake)
        self._key_owner[node_key] = who
        self._validators.append(who)
        self._bond_key.pop(who, None)
        self._stake_history.setdefault(who, _History(0)).push(now, stake)
        self._set_total(now, self._total + stake)

    @_transaction
    def register_miner(self, account: str, node_key: bytes, stake: int) -> int:
        """Registry.registerMiner: the most recently freed slot, else a new one; returns it.
        A full slot table refuses (the contract would evict by performance instead)."""
        who = self._newcomer(account, node_key, stake, self.network.min_miner_stake)
        if self._free_slots:
            slot = self._free_slots.pop()
        elif len(self._slots) < self.network.max_miners:
            slot = len(self._slots)
            self._slots.append(None)
            self._slot_history.append(_History(None))
        else:
            raise ChainError("the in-memory registry does not evict miners: every slot is taken")
        self._participants[who] = _Participant(Role.MINER, node_key, stake, slot)
        self._key_owner[node_key] = who
        self._bond_key[who] = node_key
        self._bonded_under[node_key] = who
        self._set_slot(slot, who)
        return slot

    @_transaction
    def add_stake(self, account: str, amount: int) -> None:
        """Registry.addStake."""
        who = to_checksum_address(account)
        participant = self._participants.get(who)
        if participant is None:
            raise ChainRevert("NotRegistered", (who,))
        if amount == 0:
            raise ChainRevert("ZeroAmount")
        participant.stake += amount
        if participant.role is Role.VALIDATOR:
            now = self.block_time()
            self._stake_history[who].push(now, participant.stake)
            self._set_total(now, self._total + amount)

    @_transaction
    def deregister(self, account: str) -> None:
        """Registry.deregister: a miner's slot is freed, a validator leaves the set."""
        who = to_checksum_address(account)
        participant = self._participants.pop(who, None)
        if participant is None:
            raise ChainRevert("NotRegistered", (who,))
        del self._key_owner[participant.node_key]
        if participant.role is Role.MINER:
            self._set_slot(participant.slot, None)
            self._free_slots.append(participant.slot)
        else:
            now = self.block_time()
            self._validators.remove(who)
            self._stake_history[who].push(now, 0)
            self._set_total(now, self._total - participant.stake)
        amount, _ = self._unbonding.get(who, (0, 0))
        start = self.block_time()
        if participant.role is Role.MINER:  # a bond unbonds from the end of the leaving epoch
            start = self.epoch_end(self._epoch_at(start))
        self._unbonding[who] = (amount + participant.stake, start + self.network.unbonding_delay)

    @_transaction
    def withdraw(self, account: str) -> int:
        """Registry.withdraw: pays out the unbonded stake (returned) once released."""
        who = to_checksum_address(account)
        amount, release = self._unbonding.get(who, (0, 0))
        if amount == 0:
            raise ChainRevert("NothingToWithdraw", (who,))
        if self.block_time() < release:
            raise ChainRevert("StillUnbonding", (release,))
        del self._unbonding[who]
        return amount

    @_transaction
    def unbonding_of(self, account: str) -> tuple[int, int]:
        """Registry.unbondingOf: (amount, release time)."""
        return self._unbonding.get(to_checksum_address(account), (0, 0))

    @_transaction
    def stake_of(self, account: str) -> int:
        participant = self._participants.get(to_checksum_address(account))
        return 0 if participant is None else participant.stake

    @_transaction
    def account_of_node_key(self, node_key: bytes) -> str | None:
        """The account `node_key` is bound to now, else the last one that posted a miner bond
        under it (as ChainSettlement finds it in the registration events)."""
        owner = self._key_owner.get(bytes(node_key))
        return owner if owner is not None else self._bonded_under.get(bytes(node_key))

    @_transaction
    def vote_slash(self, validator: str, miner: str, epoch: int, evidence_hash: bytes) -> bool:
        """Registry.voteSlash, sent by `validator`; True if this vote slashed the miner."""
        who, accused = to_checksum_address(validator), to_checksum_address(miner)
        if len(evidence_hash) != 32:
            raise ChainError(f"evidence hashes are 32-byte SHA-256 digests, got "
                             f"{len(evidence_hash)} bytes")
        if evidence_hash == _NO_DIGEST:
            raise ChainRevert("ZeroEvidence")
        end = self.epoch_end(epoch)
        if self.block_time() < end:
            raise ChainRevert("EpochNotEnded", (epoch, end))
        stake = self.validator_stake_at(who, end)
        if stake == 0:
            raise ChainRevert("NotValidator", (who,))
        accusation = (accused, epoch, bytes(evidence_hash))
        if accusation in self._slash_done:
            raise ChainRevert("AlreadySlashed", (accused, epoch, bytes(evidence_hash)))
        if not self._slashable(accused):
            raise ChainRevert("NotSlashable", (accused,))
        if (*accusation, who) in self._slash_voted:
            raise ChainRevert("AlreadyVotedSlash", (accused, epoch, who))
        self._slash_voted.add((*accusation, who))
        support = self._slash_support.get(accusation, 0) + stake
        self._slash_support[accusation] = support
        if not slash_passes(support, self._total_history.before(end)):
            return False
        self._slash_done.add(accusation)
        self._slash(accused)
        return True

    @_transaction
    def slash_support(self, miner: str, epoch: int, evidence_hash: bytes) -> tuple[int, bool]:
        """Registry.slashSupport: (stake voted so far, whether it slashed)."""
        accusation = (to_checksum_address(miner), epoch, bytes(evidence_hash))
        return self._slash_support.get(accusation, 0), accusation in self._slash_done

    @_transaction
    def is_node_key_banned(self, node_key: bytes) -> bool:
        return bytes(node_key) in self._banned_keys

    @_transaction
    def role_of(self, account: str) -> Role:
        participant = self._participants.get(to_checksum_address(account))
        return Role.NONE if participant is None else participant.role

    @_transaction
    def node_key_of(self, account: str) -> PublicKey:
        """The key bound to `account` (zeros if none)."""
        participant = self._participants.get(to_checksum_address(account))
        return PublicKey(_NO_DIGEST if participant is None else participant.node_key)

    @_transaction
    def miner_slots(self) -> tuple[str | None, ...]:
        """Occupant of every slot ever opened (None where free)."""
        return tuple(self._slots)

    @_transaction
    def validators(self) -> tuple[str, ...]:
        return tuple(self._validators)

    @_transaction
    def total_validator_stake(self) -> int:
        return self._total

    @_transaction
    def validator_stake_at(self, account: str, at: int) -> int:
        """Registry.validatorStakeAt: the stake before timestamp `at` (0: no validator then)."""
        history = self._stake_history.get(to_checksum_address(account))
        return 0 if history is None else history.before(at)

    # -- incentives ---------------------------------------------------------------------

    @_transaction
    def commit_weights(self, validator: str, epoch: int, digest: bytes) -> None:
        """Incentives.commitWeights, sent by `validator`."""
        who = to_checksum_address(validator)
        windows = self.windows(epoch)
        opens, closes = windows.commit_opens, windows.reveal_opens
        now = self.block_time()
        if now < opens:
            raise ChainRevert("CommitWindowNotOpen", (epoch, opens))
        if now >= closes:
            raise ChainRevert("CommitWindowClosed", (epoch, closes))
        stake = self._epoch_stake(who, opens)
        if self.commitment(epoch, who).exists:
            raise ChainRevert("AlreadyCommitted", (epoch, who))
        self._commitments[(epoch, who)] = Commitment(bytes(digest), Wei(stake), False)

    @_transaction
    def reveal_weights(
        self, validator: str, epoch: int, weights: Sequence[int], salt: bytes
    ) -> None:
        """Incentives.revealWeights, sent by `validator`."""
        who = to_checksum_address(validator)
        if any(not 0 <= w <= WEIGHT_SCALE for w in weights) or len(salt) != 32:
            raise InvalidWeights("not a uint16[] and a bytes32: no transaction could carry it")
        windows = self.windows(epoch)
        opens, closes = windows.reveal_opens, windows.settle_opens
        now = self.block_time()
        if now < opens:
            raise ChainRevert("RevealWindowNotOpen", (epoch, opens))
        if now >= closes:
            raise ChainRevert("RevealWindowClosed", (epoch, closes))
        committed = self.commitment(epoch, who)
        if not committed.exists:
            raise ChainRevert("NoCommitment", (epoch, who))
        if committed.revealed:
            raise ChainRevert("AlreadyRevealed", (epoch, who))
        if len(weights) > self.network.max_miners:
            raise ChainRevert("TooManyWeights", (len(weights), self.network.max_miners))
        if sum(weights) != WEIGHT_SCALE:
            raise ChainRevert("WeightsNotNormalized", (sum(weights),))
        digest = commit_digest(epoch, who, weights, salt)
        if digest != committed.digest:
            raise ChainRevert("RevealMismatch", (committed.digest, digest))
        self._commitments[(epoch, who)] = Commitment(committed.digest, committed.stake, True)
        self._revealed[(epoch, who)] = tuple(int(w) for w in weights)
        self._voters.setdefault(epoch, []).append(who)

    @_transaction
    def settle(self, epoch: int) -> EpochStatus:
        """Incentives.settle(epoch, 0): the whole epoch at once; returns how it closed.

        The voters are the accounts that revealed (in reveal order, whether or not they are
        still validators), each with the stake it committed with; quorum is against the
        validator stake before the epoch's end; every slot opened so far is settled and paid to
        whoever held it before the epoch's end.
        """
        status = self.epoch_status(epoch)
        if status is not EpochStatus.OPEN:
            raise ChainRevert("EpochAlreadySettled", (epoch, int(status)))
        windows = self.windows(epoch)
        end, opens = windows.commit_opens, windows.settle_opens
        if self.block_time() < opens:
            raise ChainRevert("SettlementNotOpen", (epoch, opens))
        voters = list(self._voters.get(epoch, ()))
        stakes = [self.commitment(epoch, v).stake for v in voters]
        if sum(stakes) * 2 <= self._total_history.before(end):
            self._status[epoch] = EpochStatus.NO_QUORUM
            return EpochStatus.NO_QUORUM
        econ = self.economics
        result = settle_reference(
            [self._revealed[(epoch, v)] for v in voters], stakes, len(self._slots),
            econ.emission_per_epoch, econ.miner_share_bps, econ.kappa_bps,
        )
        for slot, amount in enumerate(result.miner_rewards):
            owner = self._slot_history[slot].before(end)
            if owner is not None:
                self._credit(owner, amount)
        for voter, amount in zip(voters, result.validator_rewards, strict=True):
            self._credit(voter, amount)
        self._status[epoch] = EpochStatus.SETTLED
        return EpochStatus.SETTLED

    @_transaction
    def commitment(self, epoch: int, validator: str) -> Commitment:
        """Incentives.commitment (all zeros if none)."""
        empty = Commitment(_NO_DIGEST, Wei(0), False)
        return self._commitments.get((epoch, to_checksum_address(validator)), empty)

    @_transaction
    def revealed_weights(self, epoch: int, validator: str) -> tuple[int, ...]:
        """The weights `validator` revealed for `epoch` (empty if none)."""
        return self._revealed.get((epoch, to_checksum_address(validator)), ())

    @_transaction
    def epoch_status(self, epoch: int) -> EpochStatus:
        return self._status.get(epoch, EpochStatus.OPEN)

    @_transaction
    def claimable(self, account: str) -> int:
        """Rewards credited to `account` by settlements (never claimed here)."""
        return self._claimable.get(to_checksum_address(account), 0)

    # -- internals ----------------------------------------------------------------------

    def _newcomer(self, account: str, node_key: bytes, stake: int, minimum: int) -> str:
        who = to_checksum_address(account)
        if who in self._participants:
            raise ChainRevert("AlreadyRegistered", (who,))
        if len(node_key) != 32:
            raise ChainError(f"node keys are 32-byte Ed25519 public keys, got {len(node_key)}")
        if node_key == _NO_DIGEST:
            raise ChainRevert("ZeroNodeKey")
        owner = self._key_owner.get(node_key)
        if owner is not None:
            raise ChainRevert("NodeKeyTaken", (node_key, owner))
        if node_key in self._banned_keys:
            raise ChainRevert("NodeKeyBanned", (node_key,))
        if stake < minimum:
            raise ChainRevert("InsufficientStake", (stake, minimum))
        return who

    def _epoch_at(self, ts: int) -> int:
        """Registry.epochAt: times up to genesis count as epoch 0."""
        if ts <= self.network.genesis_time:
            return 0
        return (ts - self.network.genesis_time) // self.network.epoch_duration

    def _slashable(self, who: str) -> bool:
        participant = self._participants.get(who)
        if participant is not None:
            return participant.role is Role.MINER
        return who in self._bond_key and self._unbonding.get(who, (0, 0))[0] > 0

    def _slash(self, who: str) -> None:
        """Registry._slash: burns stake and unbonding, frees the slot, bans the bond's key."""
        burned, _ = self._unbonding.pop(who, (0, 0))
        participant = self._participants.pop(who, None)
        if participant is not None:
            burned += participant.stake
            del self._key_owner[participant.node_key]
            self._set_slot(participant.slot, None)
            self._free_slots.append(participant.slot)
        self._banned_keys.add(self._bond_key.pop(who))
        self.total_slashed += burned

    def _epoch_stake(self, who: str, epoch_end: int) -> int:
        """Incentives._epochStake: a validator with stake at the epoch's end (now or not)."""
        stake = self.validator_stake_at(who, epoch_end)
        if stake == 0:
            raise ChainRevert("NotValidator", (who,))
        return stake

    def _set_total(self, at: int, total: int) -> None:
        self._total = total
        self._total_history.push(at, total)

    def _set_slot(self, slot: int, account: str | None) -> None:
        self._slots[slot] = account
        self._slot_history[slot].push(self.block_time(), account)

    def _credit(self, account: str, amount: int) -> None:
        if amount:
            self._claimable[account] = self._claimable.get(account, 0) + amount
