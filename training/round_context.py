"""One round as a miner computes it and a validator recomputes it.

A ``RoundContext`` holds the round's public facts (network, index, beacon, certified model hash,
registered miners) with the certified model itself, the task and the network's work rules: the
protocol's seeds and data assignment for any miner follow from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from protocol.assignment import assign_samples
from protocol.domain_types import Beacon, ModelHash, PublicKey
from protocol.outer import state_hash
from protocol.randomness import contribution_seeds
from training.model import GPT
from training.tasks.task import Task
from training.work import WorkConfig


@dataclass(frozen=True)
class RoundContext:
    """Everything a miner may look at in round ``round_index``.

    ``model`` holds the round's certified parameters (``named`` are its trainable tensors, in
    canonical order); a miner must leave them as it found them.
    """

    network_id: str
    round_index: int
    beacon: Beacon
    base_model_hash: ModelHash
    model: GPT
    named: Sequence[tuple[str, torch.Tensor]]
    task: Task
    miner_keys: Sequence[PublicKey]
    samples_per_miner: int
    work: WorkConfig
    buffers: Sequence[torch.Tensor] = ()
    """The outer momentum buffers of the certified state (protocol.outer; empty without)."""

    def state_hash(self) -> ModelHash:
        """The hash of the round's certified state as held now (must equal base_model_hash)."""
        return state_hash(self.named, self.buffers)

    def miner_index(self, public_key: PublicKey) -> int:
        """A miner's slot in the round's data assignment (its rank by public key)."""
        return sorted(self.miner_keys).index(public_key)

    def assigned_samples(self, public_key: PublicKey) -> list[int]:
        """The training-sample indices the protocol assigns to ``public_key`` this round."""
        return assign_samples(
            self.beacon,
            self.task.num_train_samples(),
            self.miner_index(public_key),
            self.samples_per_miner,
        )

    def seeds(self, public_key: PublicKey, count: int | None = None) -> list[int]:
        """The first ``count`` (default: the network's K) seeds of ``public_key`` this round."""
        k = self.work.scalars if count is None else count
        return contribution_seeds(self.network_id, self.beacon, public_key, self.round_index, k)
