"""A devnet's starting point: a tiny base model on disk and the network file naming it."""

from __future__ import annotations

import secrets
from pathlib import Path

from protocol.codecs import Codec
from protocol.model_hash import model_hash
from protocol.netconfig import NetworkConfig
from seedswarm.devnet.spec import DevnetSpec
from training.checkpoint import save_checkpoint
from training.model import GPT, GPTConfig
from training.tasks import make_task
from training.trainable import TrainableSpec, prepare_trainable

TRAINABLE = "lora:4"
TASK = "synthetic"
FO_LOCAL_LR = 3e-3
"""Local AdamW rate of the devnet's miners: tuned for the small from-scratch model."""


def write_base(spec: DevnetSpec, path: Path) -> bytes:
    """Save a freshly initialised GPT with its adapters; returns its trainable-tensor hash."""
    task = make_task(TASK, context=spec.context, seed=spec.seed)
    config = GPTConfig(vocab_size=task.vocab_size, context=spec.context, width=spec.width,
                       depth=spec.depth, heads=spec.heads)
    model = GPT(config, seed=spec.seed)
    named = prepare_trainable(model, TrainableSpec.parse(TRAINABLE), seed=spec.seed)
    save_checkpoint(path, model, config, {"task": TASK, "devnet": True})
    return model_hash(named)


def network_config(spec: DevnetSpec, base_hash: bytes) -> NetworkConfig:
    """The consensus parameters every devnet node shares."""
    return NetworkConfig(
        network_id=f"devnet-{secrets.token_hex(4)}",
        base_checkpoint_hash=base_hash.hex(),
        task=TASK,
        trainable=TRAINABLE,
        codec=Codec(spec.codec),
        scalars_per_contribution=spec.scalars,
        outer_lr=spec.outer_lr,
        samples_per_miner=spec.samples_per_miner,
        max_contributions_per_round=max(32, spec.total_miners),
        data_seed=spec.seed,
        round_length_s=float(spec.round_length),
        epoch_length_rounds=spec.epoch_rounds,
        fo_local_lr=FO_LOCAL_LR,
    )
