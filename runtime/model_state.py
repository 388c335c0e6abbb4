"""A live node's model state: the base model, its trainable replica, the task, checkpoints.

The same object serves miners and validators: it loads the network's base checkpoint, advances
by certified bundles with training.replica's apply rule, gives the round's `RoundContext` to the
miner's work and the validator's scoring, and
saves / restores checkpoints atomically, so a node that dies at any instant restarts from a
state it really had.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

import torch

from adapters.storage.logstore import fsync_directory
from protocol.domain_types import ModelHash, PublicKey
from protocol.errors import ConfigError, ConsensusError
from protocol.membership import MembershipTimeline, miners_at
from protocol.netconfig import NetworkConfig
from protocol.randomness import round_beacon
from protocol.roundlog import RoundBundle
from training.checkpoint import load_checkpoint, load_extra, save_checkpoint
from training.model import GPT
from training.pretrain import validation_loss
from training.replica import ApplyRule, Replica
from training.round_context import RoundContext
from training.tasks import Task, make_task
from training.trainable import TrainableSpec, prepare_trainable
from training.work import WorkConfig

CHECKPOINT_NAME = "checkpoint.safetensors"


class ModelState:
    """The certified model of the round a node is at (see the module docstring)."""

    def __init__(self, network: NetworkConfig, model: GPT, round_index: int = 0,
                 buffers: list[torch.Tensor] | None = None) -> None:
        self.network = network
        self.model = model
        self.named = prepare_trainable(model, TrainableSpec.parse(network.trainable), seed=0)
        model.eval()
        self.task: Task = make_task(network.task, context=model.config.context,
                                    seed=network.data_seed)
        self.replica = Replica(self.named, ApplyRule.of(network), round_index, buffers)

    @classmethod
    def from_base(cls, network: NetworkConfig, base_checkpoint: Path) -> ModelState:
        """The genesis state; ConfigError unless it hashes to the network's base hash."""
        model, _ = load_checkpoint(base_checkpoint)
        state = cls(network, model)
        if state.model_hash != network.base_checkpoint_digest:
            raise ConfigError(
                f"{base_checkpoint} is not this network's base model "
                f"({state.model_hash.hex()[:16]} != {network.base_checkpoint_hash[:16]})"
            )
        return state

    @classmethod
    def restore(cls, network: NetworkConfig, path: Path) -> ModelState:
        """The state saved by `save` at `path` (hash-checked by training.checkpoint)."""
        model, meta = load_checkpoint(path)
        if meta.get("network_digest") != network.digest().hex():
            raise ConfigError(f"{path} belongs to another network")
        state = cls(network, model, int(meta["round_index"]))
        state.replica.load_state_(state.replica.tensors, _saved_buffers(path, state),
                                  state.round_index)
        if state.model_hash.hex() != meta.get("trainable_hash"):
            raise ConfigError(f"{path}: trainable tensors do not match the recorded hash")
        return state

    @property
    def round_index(self) -> int:
        """The round whose certified model this is (the next round to work on)."""
        return self.replica.round_index

    @property
    def model_hash(self) -> ModelHash:
        return self.replica.model_hash

    def round_context(self, miners: Collection[PublicKey] | MembershipTimeline, work: WorkConfig
                      ) -> RoundContext:
        """The round this state is at, as a miner computes it and a validator recomputes it;
        `miners` (the registered set, which assigns the data) is looked up for that round."""
        net = self.network
        return RoundContext(
            network_id=net.network_id,
            round_index=self.round_index,
            beacon=round_beacon(net.network_id, self.round_index),
            base_model_hash=self.model_hash,
            model=self.model,
            named=self.named,
            buffers=tuple(self.replica.buffers),
            task=self.task,
            miner_keys=tuple(sorted(miners_at(miners)(self.round_index))),
            samples_per_miner=net.samples_per_miner,
            work=work,
        )

    def apply_bundle(self, bundle: RoundBundle) -> ModelHash:
        """Advance by one certified round; ConsensusError if it does not follow or mismatches."""
        if bundle.round_index != self.round_index:
            raise ConsensusError(f"bundle of round {bundle.round_index}, at {self.round_index}")
        if bundle.prev_model_hash != self.model_hash:
            raise ConsensusError(f"round {bundle.round_index} starts from another model")
        return self.replica.apply_round(bundle.entries(), expected_hash=bundle.new_model_hash)

    def reload(self, directory: Path) -> None:
        """Return in place to the checkpoint under `directory` (after a failed apply)."""
        other = ModelState.restore(self.network, directory / CHECKPOINT_NAME)
        self.replica.load_state_(other.replica.tensors, other.replica.buffers, other.round_index)

    def validation_loss(self) -> float:
        """Loss of the current model on the task's fixed validation batch."""
        return validation_loss(self.model, self.task)

    def save(self, directory: Path) -> Path:
        """Write the checkpoint atomically (temp file, fsync, rename); returns its path."""
        target = directory / CHECKPOINT_NAME
        tmp = directory / f".{CHECKPOINT_NAME}.{os.getpid()}.tmp"
        meta = {
            "round_index": self.round_index,
            "trainable_hash": self.model_hash.hex(),
            "network_digest": self.network.digest().hex(),
        }
        with torch.no_grad():
            save_checkpoint(tmp, self.model, self.model.config, meta,
                            extra=dict(self.replica.named_buffers))
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        fsync_directory(directory)
        return target


def _saved_buffers(path: Path, state: ModelState) -> list[torch.Tensor]:
    """The outer momentum buffers a checkpoint stores, in the replica's order (the state hash
    then checks them); ConfigError when they do not match the network."""
    extra = load_extra(path)
    names = [name for name, _ in state.replica.named_buffers]
    if sorted(extra) != sorted(names):
        raise ConfigError(f"{path}: its outer momentum buffers do not match this network's "
                          f"rule (outer_momentum = {state.network.outer_momentum})")
    return [extra[name] for name in names]


def load_state(network: NetworkConfig, state_dir: Path, base_checkpoint: Path) -> ModelState:
    """The node's latest checkpoint under `state_dir`, else the genesis state."""
    state_dir.mkdir(parents=True, exist_ok=True)
    for stale in state_dir.glob(f".{CHECKPOINT_NAME}.*.tmp"):
        stale.unlink(missing_ok=True)
    saved = state_dir / CHECKPOINT_NAME
    if saved.exists():
        return ModelState.restore(network, saved)
    state = ModelState.from_base(network, base_checkpoint)
    state.save(state_dir)  # a failed apply can always return to a checkpoint
    return state
