"""What a training task is: numbered samples anyone can rebuild, and a fixed validation set.

A miner's batch for (round, index) is named by sample indices the protocol assigns, so a task
must turn the same indices into the same tensors on every node. ``fingerprint()`` names the data
itself (source files, split, sample length): nodes compare fingerprints before agreeing on a
network, because two machines with different Python versions have different stdlib sources.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch


@dataclass(frozen=True)
class Batch:
    """Token ids of a batch: ``targets`` are ``inputs`` shifted left by one position.

    Both are int64 tensors of shape (batch, context).
    """

    inputs: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


@runtime_checkable
class Task(Protocol):
    """A next-token prediction task over fixed-length, numbered samples."""

    name: str
    vocab_size: int
    context: int

    def num_train_samples(self) -> int:
        """How many training samples exist; valid indices are ``range(num_train_samples())``."""
        ...

    def train_batch(self, indices: Sequence[int]) -> Batch:
        """The training samples ``indices``, in the given order."""
        ...

    def validation_batch(self) -> Batch:
        """The task's fixed held-out batch (same tensors on every call and every node)."""
        ...

    def random_batch(self, indices: Sequence[int]) -> Batch:
        """Samples a validator draws at random; same data as ``train_batch``."""
        ...

    def fingerprint(self) -> str:
        """Hex digest naming the data, the split and the sample length."""
        ...
