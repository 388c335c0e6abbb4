"""A devnet's starting point: a tiny base model on disk and the network file naming it."""

from __future__ import annotations

import secrets
from pathlib import Path

from protocol.domain_types import ModelHash
from protocol.netconfig import NetworkConfig, build_network
from seedswarm.devnet.spec import DevnetSpec
from training.genesis import GenesisSpec, ModelShape, build_genesis, save_genesis

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


def network_config(spec: DevnetSpec, base_hash: ModelHash) -> NetworkConfig:
    """The consensus parameters every devnet node shares: the network's defaults, with the
    devnet's schedule and size."""
    recipe = devnet_genesis(spec)
    return build_network(
        f"devnet-{secrets.token_hex(4)}", base_hash, task=recipe.task,
        trainable=recipe.trainable, miners=spec.total_miners, data_seed=recipe.data_seed,
        round_length=float(spec.round_length), epoch_length=spec.epoch_rounds,
    )
