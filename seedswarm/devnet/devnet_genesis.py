"""A devnet's starting point: a tiny base model on disk and the network file naming it."""

from __future__ import annotations

import secrets
from pathlib import Path

from protocol.domain_types import ModelHash
from protocol.netconfig import NetworkConfig, build_network
from seedswarm.devnet.schedule import DevnetSchedule
from seedswarm.devnet.spec import DevnetSpec
from training.genesis import GenesisSpec, ModelShape, build_genesis, save_genesis

MIN_ROUND_S = 3
"""The shortest devnet round (seedswarm.devnet.calibration measures what a machine needs)."""
DEVNET_SHAPE = ModelShape(width=32, depth=2, heads=2, context=32)
"""Small enough that a round's work takes well under a second on one core."""


def devnet_genesis(spec: DevnetSpec) -> GenesisSpec:
    """A freshly initialised small GPT on the synthetic task (needs no data on disk)."""
    return GenesisSpec(task="synthetic", base="scratch", shape=DEVNET_SHAPE, seed=spec.seed,
                       data_seed=spec.seed)


def write_base(spec: DevnetSpec, path: Path) -> tuple[ModelHash, str]:
    """Save the devnet's base model with its adapters; returns its trainable-tensor hash and
    the task data's fingerprint."""
    genesis = build_genesis(devnet_genesis(spec))
    save_genesis(genesis, path, {"task": genesis.task.name, "devnet": True})
    return genesis.model_hash, genesis.task.fingerprint()


def network_config(spec: DevnetSpec, base_hash: ModelHash,
                   schedule: DevnetSchedule | None = None) -> NetworkConfig:
    """The consensus parameters every devnet node shares: the network's defaults, with the
    devnet's schedule (`spec`'s own round length, or the shortest, when none is given) and
    size."""
    schedule = schedule or DevnetSchedule.derive(spec, spec.round_length or MIN_ROUND_S)
    recipe = devnet_genesis(spec)
    return build_network(
        f"devnet-{secrets.token_hex(4)}", base_hash, task=recipe.task,
        trainable=recipe.trainable, miners=spec.total_miners, data_seed=recipe.data_seed,
        round_length=float(schedule.round_length), epoch_length=schedule.epoch_length,
    )
