"""Typed access to the Registry contract: participation, stake, schedule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.contract import Contract

from adapters.chain.artifacts import all_abis, load_artifact
from adapters.chain.chain_errors import ChainError
from adapters.chain.deployment import TxResult
from adapters.chain.retry import RetryPolicy, call_with_retries
from adapters.chain.revert import RevertDecoder
from adapters.chain.sender import TransactionSender
from protocol.domain_types import EvmAddress, PublicKey, Wei
from protocol.settlement.params import NetworkParams, Role

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def _node_key_word(node_key: PublicKey) -> bytes:
    if len(node_key) != 32:
        raise ChainError(f"node keys are 32-byte Ed25519 public keys, got {len(node_key)} bytes")
    return node_key


def _evidence_word(evidence_hash: bytes) -> bytes:
    if len(evidence_hash) != 32:
        raise ChainError(f"evidence hashes are 32-byte SHA-256 digests, got {len(evidence_hash)} "
                         "bytes: pass protocol.settlement.slashing.evidence_hash(signed bytes)")
    return bytes(evidence_hash)


@dataclass(frozen=True)
class Registration:
    """One MinerRegistered / ValidatorRegistered event: which key an account bound, and when.

    The contract forgets a participant's node key when it leaves, and an account may register
    again under another key, so a past key binding is only recoverable from these events.
    """

    account: EvmAddress
    node_key: PublicKey
    role: Role
    block_number: int
    log_index: int
    timestamp: int


class RegistryClient:
    """Registry calls on behalf of the sender's account (views only when built `read_only`)."""

    def __init__(self, w3: Web3, address: str, sender: TransactionSender | None) -> None:
        self._w3 = w3
        self._contract: Contract = w3.eth.contract(
            address=to_checksum_address(address), abi=list(load_artifact("Registry").abi)
        )
        self._sender = sender
        self._decoder: RevertDecoder | None = None
        self._registrations: list[Registration] = []
        self._scanned_to = -1

    @classmethod
    def read_only(cls, w3: Web3, address: str) -> RegistryClient:
        """A client that needs no account: views and events only (transactions raise)."""
        return cls(w3, address, None)

    @property
    def contract(self) -> Contract:
        """The underlying web3 contract."""
        return self._contract

    # -- transactions

    def register_miner(self, node_key: PublicKey, stake: Wei) -> TxResult:
        """Registers as a miner bound to the Ed25519 `node_key`, staking `stake` wei."""
        fn = self._contract.functions.registerMiner(_node_key_word(node_key))
        return self._tx().send(fn, value=stake)

    def register_validator(self, node_key: PublicKey, stake: Wei) -> TxResult:
        """Registers as a validator bound to `node_key`, staking `stake` wei."""
        fn = self._contract.functions.registerValidator(_node_key_word(node_key))
        return self._tx().send(fn, value=stake)

    def add_stake(self, amount: Wei) -> TxResult:
        """Adds `amount` wei to the account's stake."""
        return self._tx().send(self._contract.functions.addStake(), value=amount)

    def deregister(self) -> TxResult:
        """Leaves; the stake unbonds for the network's unbonding delay."""
        return self._tx().send(self._contract.functions.deregister())

    def withdraw(self) -> TxResult:
        """Withdraws unbonded stake (reverts StillUnbonding before the release time)."""
        return self._tx().send(self._contract.functions.withdraw())

    def vote_slash(self, miner: EvmAddress, epoch: int, evidence_hash: bytes) -> TxResult:
        """Votes, as a validator, that `miner` fabricated a contribution in `epoch`; the
        evidence hash is the SHA-256 of the signed contribution (`protocol.settlement.slashing`).
        A stake majority at the epoch's end burns the miner's bond and deregisters it."""
        fn = self._contract.functions.voteSlash(
            to_checksum_address(miner), epoch, _evidence_word(evidence_hash)
        )
        return self._tx().send(fn)

    # -- views

    def slash_support(
        self, miner: EvmAddress, epoch: int, evidence_hash: bytes
    ) -> tuple[Wei, bool]:
        """(validator stake that voted for this accusation, whether it has slashed)."""
        fn = self._contract.functions.slashSupport(
            to_checksum_address(miner), epoch, _evidence_word(evidence_hash)
        )
        support, slashed = self._view(fn)
        return Wei(int(support)), bool(slashed)

    def is_node_key_banned(self, node_key: PublicKey) -> bool:
        """Whether `node_key` belonged to a slashed miner (it can never register again)."""
        return bool(self._view(self._contract.functions.isNodeKeyBanned(_node_key_word(node_key))))

    def total_slashed(self) -> Wei:
        """Stake burned by slashes so far."""
        return Wei(int(self._view(self._contract.functions.totalSlashed())))

    def network_params(self) -> NetworkParams:
        """Schedule, stake floors and set sizes."""
        return NetworkParams.from_tuple(self._view(self._contract.functions.params()))

    def current_epoch(self) -> int:
        """The epoch of the latest block's timestamp."""
        return int(self._view(self._contract.functions.currentEpoch()))

    def epoch_end(self, epoch: int) -> int:
        """Timestamp at which `epoch` ends."""
        return int(self._view(self._contract.functions.epochEnd(epoch)))

    def role_of(self, account: EvmAddress | None = None) -> Role:
        """Role of `account` (default: the sender)."""
        return Role(int(self._view(self._contract.functions.roleOf(self._who(account)))))

    def stake_of(self, account: EvmAddress | None = None) -> Wei:
        """Active stake of `account` in wei."""
        return Wei(int(self._view(self._contract.functions.stakeOf(self._who(account)))))

    def node_key_of(self, account: EvmAddress | None = None) -> PublicKey:
        """The Ed25519 key bound to `account` (zeros if none)."""
        return PublicKey(bytes(self._view(self._contract.functions.nodeKeyOf(self._who(account)))))

    def account_of_node_key(self, node_key: PublicKey) -> EvmAddress:
        """The account bound to `node_key` (zero address if none)."""
        fn = self._contract.functions.accountOfNodeKey(_node_key_word(node_key))
        return EvmAddress(str(self._view(fn)))

    def bonded_account_of(self, node_key: PublicKey) -> EvmAddress | None:
        """The account bound to `node_key` now, else the last one that registered a miner bond
        under it (a miner that left is slashable while its bond unbonds); None if none ever did."""
        account = self.account_of_node_key(node_key)
        if int(account, 16) != 0:
            return account
        bonds = [r.account for r in self.registrations()
                 if r.role is Role.MINER and r.node_key == node_key]
        return bonds[-1] if bonds else None

    def unbonding_of(self, account: EvmAddress | None = None) -> tuple[Wei, int]:
        """(amount, release time) of `account`'s unbonding stake."""
        amount, release = self._view(self._contract.functions.unbondingOf(self._who(account)))
        return Wei(int(amount)), int(release)

    def miner_slots(self) -> list[EvmAddress]:
        """Occupant of every miner slot (zero address where free)."""
        return [EvmAddress(str(a)) for a in self._view(self._contract.functions.minerSlots())]

    def miner_slot_of(self, account: EvmAddress | None = None) -> int | None:
        """The slot `account` occupies, if it is a miner."""
        wanted = self._who(account)
        slots = self.miner_slots()
        return slots.index(wanted) if wanted in slots else None

    def validators(self) -> list[EvmAddress]:
        """Current validator set."""
        return [EvmAddress(str(a)) for a in self._view(self._contract.functions.validators())]

    def total_validator_stake(self) -> Wei:
        """Sum of the validators' stakes in wei."""
        return Wei(int(self._view(self._contract.functions.totalValidatorStake())))

    def total_validator_stake_at(self, timestamp: int) -> Wei:
        """Total validator stake as it stood before `timestamp` (e.g. an epoch's end)."""
        return Wei(int(self._view(self._contract.functions.totalValidatorStakeAt(timestamp))))

    def validator_stake_at(self, timestamp: int, account: EvmAddress | None = None) -> Wei:
        """`account`'s validator stake before `timestamp`; 0 if it was no validator then."""
        fn = self._contract.functions.validatorStakeAt(self._who(account), timestamp)
        return Wei(int(self._view(fn)))

    def epoch_start(self, epoch: int) -> int:
        """Timestamp at which `epoch` starts (`epoch_start(0)` is the genesis time)."""
        return int(self._view(self._contract.functions.epochStart(epoch)))

    def miner_slot_count(self) -> int:
        """Miner slots ever opened (slots are never closed, so this only grows)."""
        return int(self._view(self._contract.functions.minerSlotCount()))

    def miners_in_range_at(self, start: int, stop: int, timestamp: int) -> list[EvmAddress]:
        """Occupants of slots [start, stop) before `timestamp` (zero address where free)."""
        fn = self._contract.functions.minersInRangeAt(start, stop, _snapshot_time(timestamp))
        return [EvmAddress(str(a)) for a in self._view(fn)]

    def validator_stakes_at(
        self, accounts: list[EvmAddress], timestamp: int
    ) -> dict[EvmAddress, Wei]:
        """Validator stake of each of `accounts` before `timestamp` (0: no validator then)."""
        ts = _snapshot_time(timestamp)
        return {a: self.validator_stake_at(ts, a) for a in accounts}

    def registrations(self) -> list[Registration]:
        """Every registration event of the contract's history, oldest first.

        Events are fetched once, from the deployment block on, and later calls only scan the
        blocks mined since (the cache assumes a chain without reorganisations).
        """
        head = int(self._rpc(lambda: self._w3.eth.block_number))
        start = self._scanned_to + 1 if self._scanned_to >= 0 else self._deployment_block(head)
        if start > head:
            return list(self._registrations)
        found: list[tuple[Any, Role]] = []
        events = self._contract.events
        for event, role in ((events.MinerRegistered, Role.MINER),
                            (events.ValidatorRegistered, Role.VALIDATOR)):
            logs = self._rpc(partial(event().get_logs, from_block=start, to_block=head))
            found += [(log, role) for log in logs]
        found.sort(key=lambda item: (int(item[0]["blockNumber"]), int(item[0]["logIndex"])))
        times: dict[int, int] = {}
        for log, role in found:
            block = int(log["blockNumber"])
            if block not in times:
                times[block] = int(self._rpc(partial(self._w3.eth.get_block, block))["timestamp"])
            self._registrations.append(Registration(
                account=EvmAddress(to_checksum_address(log["args"]["account"])),
                node_key=PublicKey(bytes(log["args"]["nodeKey"])), role=role, block_number=block,
                log_index=int(log["logIndex"]), timestamp=times[block],
            ))
        self._scanned_to = head
        return list(self._registrations)

    def _deployment_block(self, head: int) -> int:
        """The first block holding the contract's code (binary search), 0 if history is gone."""
        address = self._contract.address
        low, high = 0, head
        try:
            while low < high:
                mid = (low + high) // 2
                code = self._rpc(partial(self._w3.eth.get_code, address, block_identifier=mid))
                if len(code) > 0:
                    high = mid
                else:
                    low = mid + 1
        except ChainError:
            raise
        except Exception:  # a pruned node cannot answer for old blocks: scan everything
            return 0
        return low

    def _rpc(self, action: Callable[[], Any]) -> Any:
        return call_with_retries(action, RetryPolicy())

    def latest_timestamp(self) -> int:
        """Timestamp of the chain's latest block: snapshots before it can no longer change."""
        return int(self._rpc(lambda: self._w3.eth.get_block("latest"))["timestamp"])

    def _who(self, account: EvmAddress | None) -> EvmAddress:
        if account is None:
            account = self._tx().address
        return EvmAddress(to_checksum_address(account))

    def _tx(self) -> TransactionSender:
        if self._sender is None:
            raise ChainError("this registry client is read-only: it has no account to send from")
        return self._sender

    def _view(self, fn: Any) -> Any:
        if self._sender is not None:
            return self._sender.call_decoded(fn)
        try:
            return call_with_retries(lambda: fn.call(), RetryPolicy())
        except ChainError:
            raise
        except Exception as exc:
            if self._decoder is None:
                self._decoder = RevertDecoder(all_abis())
            decoded = self._decoder.from_exception(exc)
            raise decoded or ChainError(f"view call failed: {exc}") from exc


def _snapshot_time(timestamp: int) -> int:
    # The `...At` views look up `timestamp - 1`; 0 would underflow inside the contract.
    if timestamp < 1:
        raise ChainError(f"snapshot timestamps start at 1, got {timestamp}")
    return timestamp
