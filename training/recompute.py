"""Recompute a miner's scalars with the round's model and task: what a validator verifies.

It redoes exactly the honest miner's work (training.work) for the round of a ``RoundContext``:
the contribution's protocol seeds, the sender's assigned samples, the certified model of the
round. It satisfies validator.verification's ``ScalarOracle`` protocol.

* ZO: one central difference per requested index, two forward passes each.
* FO: the whole local update (H AdamW steps) once per contribution, cached, then only the
  requested projections, using the block counts the contribution declares.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from protocol.codecs import Codec, project_delta, seed_blocks
from protocol.domain_types import PublicKey
from protocol.errors import ConsensusError
from protocol.layout import ParamLayout
from protocol.messages import Contribution
from protocol.randomness import contribution_seeds
from training.model import eval_loss
from training.round_context import RoundContext
from training.tasks.task import Batch
from training.work import concat_batches, local_adamw_delta, split_batches, zo_scalars


class ScalarRecomputer:
    """Recomputes raw (unquantized) scalars on the certified model of ``ctx``'s round.

    ``ctx.model`` must hold the round's certified parameters whenever ``recompute`` runs; it is
    left exactly as found.
    """

    def __init__(self, ctx: RoundContext) -> None:
        self.ctx = ctx
        self.layout = ParamLayout.of(ctx.named)
        self._deltas: dict[PublicKey, list[torch.Tensor]] = {}

    def recompute(self, contribution: Contribution, indices: Sequence[int]) -> list[float]:
        """The scalars at ``indices`` an honest sender would have computed before quantizing."""
        ctx = self.ctx
        if contribution.round_index != ctx.round_index:
            raise ConsensusError("the oracle holds a different round's model")
        if ctx.state_hash() != ctx.base_model_hash:
            raise ConsensusError("the oracle's model is not the round's certified model")
        seeds = contribution_seeds(
            ctx.network_id, ctx.beacon, contribution.sender, ctx.round_index,
            len(contribution.codes),
        )
        chosen = [seeds[i] for i in indices]
        if Codec(contribution.codec) is Codec.ZO:
            batch = concat_batches(self._batches(contribution.sender, parts=1))
            work = ctx.work
            return zo_scalars(ctx.model, ctx.named, batch, chosen, work.spsa_eps, work.direction)
        return self._fo_scalars(contribution, indices, chosen)

    def assigned_loss(self, contribution: Contribution) -> float:
        """The round model's loss on the sender's assigned data (sets the ZO noise floor)."""
        return eval_loss(self.ctx.model, concat_batches(self._batches(contribution.sender, 1)))

    def _batches(self, sender: PublicKey, parts: int) -> list[Batch]:
        samples = self.ctx.assigned_samples(sender)
        return [self.ctx.task.train_batch(part) for part in split_batches(samples, parts)]

    def _fo_scalars(
        self, contribution: Contribution, indices: Sequence[int], seeds: Sequence[int]
    ) -> list[float]:
        delta = self._local_delta(contribution.sender)
        counts = contribution.block_counts
        blocks = seed_blocks(counts)
        out = []
        for index, seed in zip(indices, seeds, strict=True):
            block = blocks[index]
            one_hot = [1 if b == block else 0 for b in range(len(counts))]
            # One seed alone on its block with count 1 gives v·Δ_b exactly; dividing by the
            # declared count reproduces the miner's v·Δ_b / (ρ K_b) bit for bit (ρ = 1).
            unit = project_delta(delta, self.layout, [seed], self.ctx.work.direction, one_hot)[0]
            out.append(unit / counts[block])
        return out

    def _local_delta(self, sender: PublicKey) -> list[torch.Tensor]:
        cached = self._deltas.get(sender)
        if cached is None:
            work = self.ctx.work
            batches = self._batches(sender, parts=work.local_steps)
            cached = local_adamw_delta(
                self.ctx.model, self.ctx.named, batches, work.local_lr, work.local_weight_decay
            )
            self._deltas[sender] = cached
        return cached
