"""The simulator's scalar oracle: recompute a miner's scalars with node's model and task.

The validator (``validator.verification``) only knows the ``ScalarOracle`` protocol; this is
the implementation the composition root injects. It redoes exactly the honest miner's work
(``node.work``) for the round of a ``RoundContext``: the contribution's protocol seeds, the
sender's assigned samples, the certified model of the round.

* ZO: one central difference per requested index, two forward passes each.
* FO: the whole local update (H AdamW steps) once per contribution, cached, then only the
  requested projections, using the block counts the contribution declares.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from node.model import GPT
from node.replica import contribution_scalars
from node.tasks.base import Batch
from node.work import concat_batches, local_adamw_delta, split_batches, zo_scalars
from protocol.apply import apply_updates_
from protocol.codecs import Codec, contribution_updates, project_delta, seed_blocks
from protocol.errors import ConsensusError
from protocol.layout import ParamLayout
from protocol.messages import Contribution
from protocol.model_hash import model_hash
from protocol.randomness import contribution_seeds, round_beacon
from protocol.signing import message_digest
from seedswarm.sim.roles import RoundContext
from validator.influence import realized_influence
from validator.loss_delta import LossMeasurement


class SimScalarOracle:
    """Recomputes raw (unquantized) scalars on the certified model of ``ctx``'s round.

    ``ctx.model`` must hold the round's certified parameters whenever ``recompute`` runs; it is
    left exactly as found.
    """

    def __init__(self, ctx: RoundContext) -> None:
        self.ctx = ctx
        self.layout = ParamLayout.of(ctx.named)
        self._deltas: dict[bytes, list[torch.Tensor]] = {}

    def recompute(self, contribution: Contribution, indices: Sequence[int]) -> list[float]:
        """The scalars at ``indices`` an honest sender would have computed before quantizing."""
        ctx = self.ctx
        if contribution.round_index != ctx.round_index:
            raise ConsensusError("the oracle holds a different round's model")
        if model_hash(ctx.named) != ctx.base_model_hash:
            raise ConsensusError("the oracle's model is not the round's certified model")
        seeds = contribution_seeds(
            ctx.network_id, ctx.beacon, contribution.sender, ctx.round_index,
            len(contribution.codes),
        )
        chosen = [seeds[i] for i in indices]
        if Codec(contribution.codec) is Codec.ZO:
            batch = concat_batches(self._batches(contribution.sender, parts=1))
            return zo_scalars(ctx.model, ctx.named, batch, chosen, ctx.work.eps, ctx.work.spec)
        return self._fo_scalars(contribution, indices, chosen)

    def assigned_loss(self, contribution: Contribution) -> float:
        """The round model's loss on the sender's assigned data (sets the ZO noise floor)."""
        return eval_loss(self.ctx.model, concat_batches(self._batches(contribution.sender, 1)))

    def _batches(self, sender: bytes, parts: int) -> list[Batch]:
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
            unit = project_delta(delta, self.layout, [seed], self.ctx.work.spec, one_hot)[0]
            out.append(unit / counts[block])
        return out

    def _local_delta(self, sender: bytes) -> list[torch.Tensor]:
        cached = self._deltas.get(sender)
        if cached is None:
            work = self.ctx.work
            batches = self._batches(sender, parts=work.local_steps)
            cached = local_adamw_delta(
                self.ctx.model, self.ctx.named, batches, work.local_lr, work.weight_decay
            )
            self._deltas[sender] = cached
        return cached


class SimRoundOracle(SimScalarOracle):
    """Everything a validator's pipeline asks of the model in one round (``RoundOracle``).

    Besides recomputing scalars: losses of the round's model with a contribution applied alone
    at ``weight`` (its displacement ``weight · δ_c``, δ_c = what the apply rule adds at weight 1)
    on the sender's assigned samples and on validator-chosen samples, and the realized DICE
    influence ``∇L_valᵀ (weight · δ_c)`` on the validation batch, by one central difference
    along the displacement (two forward passes). ``δ_c`` is rebuilt from the contribution alone
    (its round and base hash give the beacon and seeds), so contributions certified in earlier
    rounds can be measured again on this round's model: the cascade.

    ``influence_samples`` caps the validation samples used for influence (the first ones of the
    task's fixed validation batch): a cost knob, shared by every validator of a network.
    """

    def __init__(self, ctx: RoundContext, outer_lr: float, influence_samples: int = 64) -> None:
        super().__init__(ctx)
        self.outer_lr = outer_lr
        validation = ctx.task.validation_batch()
        n = max(1, min(influence_samples, len(validation.inputs)))
        self.validation = Batch(validation.inputs[:n], validation.targets[:n])
        self._displacements: dict[tuple[bytes, float], list[torch.Tensor]] = {}
        self._before: dict[tuple[int, ...], float] = {}
        self._validation_loss: float | None = None
        self.forward_passes = 0  # forward passes spent on value measurement (any batch size)

    def num_train_samples(self) -> int:
        """The task's training-set size (the range of random evaluation samples)."""
        return self.ctx.task.num_train_samples()

    def validation_loss(self) -> float:
        """The round model's loss on the validation samples influence is measured on."""
        if self._validation_loss is None:
            self._validation_loss = self._loss(self.validation)
        return self._validation_loss

    def displacement(self, contribution: Contribution, weight: float) -> list[torch.Tensor]:
        """What applying ``contribution`` alone at ``weight`` adds to the trainable tensors."""
        key = (message_digest(contribution), weight)
        cached = self._displacements.get(key)
        if cached is not None:
            return cached
        net = self.ctx.network_id
        beacon = round_beacon(net, contribution.round_index, contribution.base_model_hash)
        seeds = contribution_seeds(
            net, beacon, contribution.sender, contribution.round_index, len(contribution.codes)
        )
        updates = contribution_updates(
            Codec(contribution.codec), seeds, contribution_scalars(contribution),
            contribution.block_counts, self.outer_lr, weight,
        )
        zeros = [torch.zeros_like(t, dtype=torch.float32) for _, t in self.ctx.named]
        apply_updates_(zeros, self.layout, updates, self.ctx.work.spec)
        self._displacements[key] = zeros
        return zeros

    def measure(
        self, contribution: Contribution, weight: float, random_indices: Sequence[int]
    ) -> LossMeasurement:
        """Losses before / after applying ``contribution`` alone at ``weight``: own and random."""
        own = tuple(self.ctx.assigned_samples(contribution.sender))
        rnd = tuple(random_indices)
        own_batch = self.ctx.task.train_batch(list(own))
        rnd_batch = self.ctx.task.random_batch(list(rnd))
        own_before = self._loss_before(own, own_batch)
        rnd_before = self._loss_before(rnd, rnd_batch)
        with self._shifted(self.displacement(contribution, weight)):
            own_after = self._loss(own_batch)
            rnd_after = self._loss(rnd_batch)
        return LossMeasurement(own_before, own_after, rnd_before, rnd_after)

    def influence(self, contribution: Contribution, weight: float) -> float:
        """Realized one-hop DICE influence of the contribution at ``weight`` on this model."""
        params = [t for _, t in self.ctx.named]
        self.forward_passes += 2
        with torch.no_grad():
            return realized_influence(
                lambda: self._eval_loss(self.validation), params,
                self.displacement(contribution, weight),
            )

    def _loss_before(self, key: tuple[int, ...], batch: Batch) -> float:
        if key not in self._before:
            self._before[key] = self._loss(batch)
        return self._before[key]

    def _loss(self, batch: Batch) -> float:
        self.forward_passes += 1
        return self._eval_loss(batch)

    def _eval_loss(self, batch: Batch) -> float:
        return eval_loss(self.ctx.model, batch)

    @contextmanager
    def _shifted(self, displacement: Sequence[torch.Tensor]) -> Iterator[None]:
        """The model with ``displacement`` added, restored bit for bit afterwards."""
        params = [t for _, t in self.ctx.named]
        backup = [p.detach().clone() for p in params]
        try:
            with torch.no_grad():
                for p, d in zip(params, displacement, strict=True):
                    p.add_(d.to(p.dtype))
            yield
        finally:
            with torch.no_grad():
                for p, b in zip(params, backup, strict=True):
                    p.copy_(b)


def eval_loss(model: GPT, batch: Batch) -> float:
    """``model``'s loss on ``batch`` in eval mode, without gradients; the mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return float(model.loss(batch))
    finally:
        model.train(was_training)
