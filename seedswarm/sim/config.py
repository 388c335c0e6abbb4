"""What a simulated swarm run is: the network's rules, the miners' habits, the base model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from protocol.errors import ConfigError
from training.genesis import DEFAULT_TRAINABLE, ModelShape

SCALAR_FORMATS = ("byte", "fp32")
SCORINGS = ("gauntlet", "equal")
DIRECTIONS = ("gaussian", "rademacher", "lowrank")


@dataclass(frozen=True)
class SimConfig:
    """One simulated run. The network's rules (codec, scalars, outer_lr, spsa_eps, direction,
    direction_rank, samples_per_miner, local_steps, local_lr): None means the network's own
    default (protocol.netconfig, the one place they are set; the outer learning rate's depends
    on the codec). The run's ``network`` (seedswarm.sim.swarm.network_config) holds them all.

    ``scoring``: ``gauntlet`` certifies each round by the validator pipeline (filters,
    verification, loss deltas, DICE influence, ratings: ``validator.scorer``); ``equal``
    includes every well-formed contribution with equal weight (honest-only studies).
    ``attackers``: (kind, count) pairs from ``seedswarm.sim.attackers.ATTACKS``.

    ``base``: ``auto`` pretrains a small base model on ``pretrain_task`` (cached by recipe
    under ``cache_dir``), ``scratch`` starts from a random init, anything else is the path of
    a checkpoint written by ``seedswarm pretrain``.
    """

    task: str = "pycode:finetune"
    miners: int = 8
    rounds: int = 30
    codec: str | None = None
    scalars: int | None = None
    trainable: str = DEFAULT_TRAINABLE
    seed: int = 0
    outer_lr: float | None = None
    outer_momentum: float | None = None
    spsa_eps: float | None = None
    direction: str | None = None
    direction_rank: int | None = None
    samples_per_miner: int | None = None
    local_steps: int | None = None
    local_lr: float | None = None
    base: str = "auto"
    pretrain_task: str = "pycode:pretrain"
    pretrain_steps: int = 200
    shape: ModelShape = field(default_factory=ModelShape)
    data_seed: int = 0
    scalar_format: str = "byte"
    check_replicas: bool = False
    network_id: str = "seedswarm-sim"
    cache_dir: Path | None = None
    scoring: str = "gauntlet"
    attackers: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        if self.miners < 1 or self.rounds < 0:
            raise ConfigError("simulate needs miners >= 1 and rounds >= 0")
        if self.codec not in (None, "zo", "fo"):
            raise ConfigError(f"codec must be zo or fo, got {self.codec!r}")
        if self.direction not in (None, *DIRECTIONS):
            raise ConfigError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if self.scalar_format not in SCALAR_FORMATS:
            raise ConfigError(f"scalar format must be one of {SCALAR_FORMATS}")
        if self.scoring not in SCORINGS:
            raise ConfigError(f"scoring must be one of {SCORINGS}, got {self.scoring!r}")
