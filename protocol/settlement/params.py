"""Typed mirrors of the contracts' parameter structs and enums (what settlement computes with)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from protocol.domain_types import ModelHash, Wei

WEIGHT_SCALE = 65_535
"""Revealed weight vectors sum to exactly this (uint16 max)."""

BPS = 10_000


class Role(enum.IntEnum):
    """Registry.Role."""

    NONE = 0
    MINER = 1
    VALIDATOR = 2


class EpochStatus(enum.IntEnum):
    """Incentives.EpochStatus."""

    OPEN = 0
    SETTLING = 1
    SETTLED = 2
    NO_QUORUM = 3
    MERKLE_SETTLED = 4


@dataclass(frozen=True)
class NetworkParams:
    """Registry.NetworkParams: schedule, stake floors, set sizes."""

    genesis_time: int
    round_length: int
    epoch_length: int
    genesis_model_hash: ModelHash
    min_miner_stake: Wei
    min_validator_stake: Wei
    unbonding_delay: int
    max_miners: int
    max_validators: int
    immunity_epochs: int

    @property
    def epoch_duration(self) -> int:
        """Seconds per epoch."""
        return self.round_length * self.epoch_length

    def as_tuple(self) -> tuple[Any, ...]:
        """Positional form for the Registry constructor."""
        return (
            self.genesis_time,
            self.round_length,
            self.epoch_length,
            self.genesis_model_hash,
            self.min_miner_stake,
            self.min_validator_stake,
            self.unbonding_delay,
            self.max_miners,
            self.max_validators,
            self.immunity_epochs,
        )

    @classmethod
    def from_tuple(cls, raw: Any) -> NetworkParams:
        """Builds from the struct as web3 returns it."""
        values = tuple(raw)
        return cls(
            genesis_time=int(values[0]),
            round_length=int(values[1]),
            epoch_length=int(values[2]),
            genesis_model_hash=ModelHash(bytes(values[3])),
            min_miner_stake=Wei(int(values[4])),
            min_validator_stake=Wei(int(values[5])),
            unbonding_delay=int(values[6]),
            max_miners=int(values[7]),
            max_validators=int(values[8]),
            immunity_epochs=int(values[9]),
        )


@dataclass(frozen=True)
class EconomicParams:
    """Incentives.EconomicParams: emission, its split, consensus quantile, windows."""

    emission_per_epoch: Wei
    commit_window: int
    reveal_window: int
    miner_share_bps: int = 5_000
    kappa_bps: int = 5_000

    def as_tuple(self) -> tuple[int, ...]:
        """Positional form for the Incentives constructor."""
        return (
            self.emission_per_epoch,
            self.miner_share_bps,
            self.kappa_bps,
            self.commit_window,
            self.reveal_window,
        )

    @classmethod
    def from_tuple(cls, raw: Any) -> EconomicParams:
        """Builds from the struct as web3 returns it."""
        emission, share, kappa, commit, reveal = (int(v) for v in tuple(raw))
        return cls(Wei(emission), commit, reveal, miner_share_bps=share, kappa_bps=kappa)


@dataclass(frozen=True)
class EpochWindows:
    """When an epoch's commit and reveal windows open, and when settlement may start."""

    commit_opens: int
    reveal_opens: int
    settle_opens: int


@dataclass(frozen=True)
class Commitment:
    """Incentives.Commitment of one validator for one epoch."""

    digest: bytes
    stake: Wei
    revealed: bool

    @property
    def exists(self) -> bool:
        """True when the validator has committed."""
        return self.digest != bytes(32)
