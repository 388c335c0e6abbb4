"""Typed access to the Registry contract: participation, stake, schedule."""

from __future__ import annotations

from typing import Any

from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.contract import Contract

from protocol.chain.artifacts import load_artifact
from protocol.chain.errors import ChainError
from protocol.chain.params import NetworkParams, Role, TxResult
from protocol.chain.sender import TransactionSender


def _node_key_word(node_key: bytes) -> bytes:
    if len(node_key) != 32:
        raise ChainError(f"node keys are 32-byte Ed25519 public keys, got {len(node_key)} bytes")
    return node_key


class RegistryClient:
    """Registry calls on behalf of the sender's account."""

    def __init__(self, w3: Web3, address: str, sender: TransactionSender) -> None:
        self._contract: Contract = w3.eth.contract(
            address=to_checksum_address(address), abi=list(load_artifact("Registry").abi)
        )
        self._sender = sender

    @property
    def contract(self) -> Contract:
        """The underlying web3 contract."""
        return self._contract

    # -- transactions

    def register_miner(self, node_key: bytes, stake: int) -> TxResult:
        """Registers as a miner bound to the Ed25519 `node_key`, staking `stake` wei."""
        fn = self._contract.functions.registerMiner(_node_key_word(node_key))
        return self._sender.send(fn, value=stake)

    def register_validator(self, node_key: bytes, stake: int) -> TxResult:
        """Registers as a validator bound to `node_key`, staking `stake` wei."""
        fn = self._contract.functions.registerValidator(_node_key_word(node_key))
        return self._sender.send(fn, value=stake)

    def add_stake(self, amount: int) -> TxResult:
        """Adds `amount` wei to the account's stake."""
        return self._sender.send(self._contract.functions.addStake(), value=amount)

    def deregister(self) -> TxResult:
        """Leaves; the stake unbonds for the network's unbonding delay."""
        return self._sender.send(self._contract.functions.deregister())

    def withdraw(self) -> TxResult:
        """Withdraws unbonded stake (reverts StillUnbonding before the release time)."""
        return self._sender.send(self._contract.functions.withdraw())

    # -- views

    def network_params(self) -> NetworkParams:
        """Schedule, stake floors and set sizes."""
        return NetworkParams.from_tuple(self._view(self._contract.functions.params()))

    def current_epoch(self) -> int:
        """The epoch of the latest block's timestamp."""
        return int(self._view(self._contract.functions.currentEpoch()))

    def epoch_end(self, epoch: int) -> int:
        """Timestamp at which `epoch` ends."""
        return int(self._view(self._contract.functions.epochEnd(epoch)))

    def role_of(self, account: str | None = None) -> Role:
        """Role of `account` (default: the sender)."""
        return Role(int(self._view(self._contract.functions.roleOf(self._who(account)))))

    def stake_of(self, account: str | None = None) -> int:
        """Active stake of `account` in wei."""
        return int(self._view(self._contract.functions.stakeOf(self._who(account))))

    def node_key_of(self, account: str | None = None) -> bytes:
        """The Ed25519 key bound to `account` (zeros if none)."""
        return bytes(self._view(self._contract.functions.nodeKeyOf(self._who(account))))

    def account_of_node_key(self, node_key: bytes) -> str:
        """The account bound to `node_key` (zero address if none)."""
        fn = self._contract.functions.accountOfNodeKey(_node_key_word(node_key))
        return str(self._view(fn))

    def unbonding_of(self, account: str | None = None) -> tuple[int, int]:
        """(amount, release time) of `account`'s unbonding stake."""
        amount, release = self._view(self._contract.functions.unbondingOf(self._who(account)))
        return int(amount), int(release)

    def miner_slots(self) -> list[str]:
        """Occupant of every miner slot (zero address where free)."""
        return [str(a) for a in self._view(self._contract.functions.minerSlots())]

    def miner_slot_of(self, account: str | None = None) -> int | None:
        """The slot `account` occupies, if it is a miner."""
        wanted = self._who(account)
        slots = self.miner_slots()
        return slots.index(wanted) if wanted in slots else None

    def validators(self) -> list[str]:
        """Current validator set."""
        return [str(a) for a in self._view(self._contract.functions.validators())]

    def total_validator_stake(self) -> int:
        """Sum of the validators' stakes in wei."""
        return int(self._view(self._contract.functions.totalValidatorStake()))

    def total_validator_stake_at(self, timestamp: int) -> int:
        """Total validator stake as it stood before `timestamp` (e.g. an epoch's end)."""
        return int(self._view(self._contract.functions.totalValidatorStakeAt(timestamp)))

    def validator_stake_at(self, timestamp: int, account: str | None = None) -> int:
        """`account`'s validator stake before `timestamp`; 0 if it was no validator then."""
        fn = self._contract.functions.validatorStakeAt(self._who(account), timestamp)
        return int(self._view(fn))

    def _who(self, account: str | None) -> str:
        return to_checksum_address(account or self._sender.address)

    def _view(self, fn: object) -> Any:
        return self._sender.call_decoded(fn)
