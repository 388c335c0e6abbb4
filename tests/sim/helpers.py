"""Small, fast simulator configurations shared by the sim tests."""

from __future__ import annotations

from typing import Any

from seedswarm.sim.config import SimConfig
from training.genesis import ModelShape

TINY = ModelShape(width=32, depth=1, heads=2, context=32)


def tiny_config(**overrides: Any) -> SimConfig:
    """A synthetic-task swarm from a random init that runs in about a second per round."""
    base: dict[str, Any] = dict(
        task="synthetic", base="scratch", shape=TINY, trainable="full", miners=4, rounds=3,
        codec="fo", scalars=64, samples_per_miner=16, seed=0,
    )
    base.update(overrides)
    return SimConfig(**base)
