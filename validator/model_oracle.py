"""The validator's view of the model in one round: everything its pipeline measures.

``validator.pipeline`` only knows the ``RoundOracle`` protocol (validator.pipeline_types); this
is its implementation on the training layer's model, task and recomputation
(training.recompute), used by every validator, live or simulated.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from protocol.apply import apply_updates_
from protocol.codecs import Codec, contribution_updates
from protocol.domain_types import Digest
from protocol.messages import Contribution
from protocol.randomness import contribution_seeds, round_beacon
from protocol.signing import message_digest
from training.model import eval_loss
from training.recompute import ScalarRecomputer
from training.replica import contribution_scalars
from training.round_context import RoundContext
from training.tasks.task import Batch
from validator.influence import realized_influence
from validator.loss_delta import LossMeasurement


class ModelRoundOracle(ScalarRecomputer):
    """Everything a validator's pipeline asks of the model in one round (``RoundOracle``).

    Besides recomputing scalars: losses of the round's model with a contribution applied alone
    at ``weight`` (its displacement ``weight · δ_c``, δ_c = what the apply rule adds at weight 1)
    on the sender's assigned samples and on validator-chosen samples, and the realized DICE
    influence ``∇L_valᵀ (weight · δ_c)`` on the validation batch, by one central difference
    along the displacement (two forward passes). ``δ_c`` is rebuilt from the contribution alone
    (its round gives the beacon and seeds), so contributions certified in earlier
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
        self._displacements: dict[tuple[Digest, float], list[torch.Tensor]] = {}
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
        beacon = round_beacon(net, contribution.round_index)
        seeds = contribution_seeds(
            net, beacon, contribution.sender, contribution.round_index, len(contribution.codes)
        )
        updates = contribution_updates(
            Codec(contribution.codec), seeds, contribution_scalars(contribution),
            contribution.block_counts, self.outer_lr, weight,
        )
        zeros = [torch.zeros_like(t, dtype=torch.float32) for _, t in self.ctx.named]
        apply_updates_(zeros, self.layout, updates, self.ctx.work.direction)
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
