"""What a miner computes each round: the ``Miner`` seam and the honest implementation.

A ``Miner`` turns a ``RoundContext`` into the bytes it publishes. ``HonestMiner`` does the
protocol's work (training.work) on exactly the data and seeds the protocol assigns it; the
simulator and the devnet plug other miners (attackers) into the same seam from outside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from protocol.identity import NodeKey
from training.round_context import RoundContext
from training.tasks.task import Batch
from training.work import RoundInfo, WorkConfig, WorkResult, do_work, split_batches


class Miner(Protocol):
    """A participant that publishes one message per round."""

    key: NodeKey
    sequence: int
    """The last sequence number it sealed (a live node raises it to the clock on restart)."""

    def work(self, ctx: RoundContext) -> bytes:
        """The bytes this miner publishes in the round of ``ctx``."""
        ...


class HonestMiner:
    """Computes its scalars on exactly the data and seeds the protocol assigns it.

    ``scalars`` is its capacity K (at most the network's; default the network's).
    """

    def __init__(self, key: NodeKey, scalars: int | None = None) -> None:
        self.key = key
        self.scalars = scalars
        self.sequence = 0
        self.last: WorkResult | None = None

    def work_config(self, ctx: RoundContext) -> WorkConfig:
        """The round's work rules with this miner's K."""
        if self.scalars is None:
            return ctx.work
        return replace(ctx.work, scalars=min(self.scalars, ctx.work.scalars))

    def batches(self, ctx: RoundContext, indices: Sequence[int]) -> list[Batch]:
        """Its training batches for ``indices`` (one per FO local step; ZO: one)."""
        parts = ctx.work.local_steps if ctx.work.codec.value == "fo" else 1
        return [ctx.task.train_batch(part) for part in split_batches(indices, parts)]

    def work(self, ctx: RoundContext) -> bytes:
        """Compute, quantize and seal this round's contribution."""
        me = self.key.public.raw
        config = self.work_config(ctx)
        batches = self.batches(ctx, ctx.assigned_samples(me))
        info = RoundInfo(
            network_id=ctx.network_id,
            round_index=ctx.round_index,
            base_model_hash=ctx.base_model_hash,
            seeds=tuple(ctx.seeds(me, config.scalars)),
        )
        self.sequence += 1
        self.last = do_work(
            self.key, ctx.model, ctx.named, batches, info, config, sequence=self.sequence
        )
        return self.last.sealed
