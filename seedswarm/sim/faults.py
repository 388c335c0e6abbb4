"""Honest operators with faults the simulator can inject: a corrupted local copy of the data."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from node.honest_miner import HonestMiner
from protocol.identity import NodeKey
from training.round_context import RoundContext
from training.tasks.task import Batch


class CorruptedDataMiner(HonestMiner):
    """An honest miner whose local copy of the data is corrupted: a fraction ``data_noise`` of
    its target tokens is replaced at random (a validator recomputing on the true data sees
    scalars that differ, exactly as for a miner training on the wrong data)."""

    def __init__(self, key: NodeKey, scalars: int | None = None, data_noise: float = 0.0) -> None:
        super().__init__(key, scalars)
        self.data_noise = data_noise

    def batches(self, ctx: RoundContext, indices: Sequence[int]) -> list[Batch]:
        batches = super().batches(ctx, indices)
        if self.data_noise <= 0.0:
            return batches
        return [corrupt_targets(b, self.data_noise, ctx.task.vocab_size,
                                seed=ctx.round_index * 1_000_003 + i)
                for i, b in enumerate(batches)]


def corrupt_targets(batch: Batch, fraction: float, vocab_size: int, seed: int) -> Batch:
    """``batch`` with about ``fraction`` of its targets replaced by random tokens."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(batch.targets.shape, generator=generator) < fraction
    random_tokens = torch.randint(0, vocab_size, batch.targets.shape, generator=generator)
    return Batch(batch.inputs, torch.where(noise, random_tokens, batch.targets))
