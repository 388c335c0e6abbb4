"""What a simulated swarm run is: the network's rules, the miners' habits, the base model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from protocol.errors import ConfigError
from training.genesis import ModelShape

SCALAR_FORMATS = ("byte", "fp32")
SCORINGS = ("gauntlet", "equal")
DIRECTIONS = ("gaussian", "rademacher", "lowrank")


@dataclass(frozen=True)
class SimConfig:
    """One simulated run. ``lr`` None means the codec's default outer learning rate.

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
    codec: str = "fo"
    scalars: int = 1024
    trainable: str = "lora:4"
    seed: int = 0
    lr: float | None = None
    eps: float = 1e-3
    direction: str = "gaussian"
    direction_rank: int = 1
    samples_per_miner: int = 16
    local_steps: int = 4
    local_lr: float = 1e-2
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
        if self.miners < 1 or self.rounds < 0 or self.scalars < 1:
            raise ConfigError("simulate needs miners >= 1, rounds >= 0 and scalars >= 1")
        if self.codec not in ("zo", "fo"):
            raise ConfigError(f"codec must be zo or fo, got {self.codec!r}")
        if self.direction not in DIRECTIONS:
            raise ConfigError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if self.scalar_format not in SCALAR_FORMATS:
            raise ConfigError(f"scalar format must be one of {SCALAR_FORMATS}")
        if self.scoring not in SCORINGS:
            raise ConfigError(f"scoring must be one of {SCORINGS}, got {self.scoring!r}")
        if self.samples_per_miner < 1 or self.local_steps < 1:
            raise ConfigError("samples_per_miner and local_steps must be positive")

    @property
    def outer_lr(self) -> float:
        """The network's outer learning rate for this run."""
        if self.lr is not None:
            return self.lr
        return DEFAULT_OUTER_LR[self.codec]


# Measured on pycode:finetune / lora:4 / 8 miners (bench/convergence.py): FO applies an unbiased
# reconstruction of each miner's local AdamW update, and 0.5 damps the projection noise (1.0
# reached the same loss less smoothly, 2.0 diverged); ZO's scalars are raw gradient projections of
# a LoRA whose gradients are tiny, so it needs a large step (3 with 8x32 scalars; 10 diverged).
DEFAULT_OUTER_LR = {"fo": 0.5, "zo": 3.0}
