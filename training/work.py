"""A miner's work for one round: scalars on its assigned data, quantized, sealed.

Two codecs turn local computation into a list of scalars, one per shared-random direction
``z(seed)`` whose seeds the protocol assigns to this miner for this round:

* zeroth order (ZO): each scalar is a central-difference directional derivative of the loss on
  the assigned batch, two forward passes per seed, model in eval mode;
* first order (FO): ``H`` local AdamW steps from the round's model on the assigned data give a
  pseudo-gradient ``Δ = θ_start − θ_end``, which is projected onto the seeds' directions
  (block-wise, more seeds for the tensors that moved more).

Either way the model is returned to the round's exact parameters afterwards, the scalars are
quantized to one byte each, and the result is a signed ``Contribution``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from protocol.codecs import Codec, allocate_blocks, block_norms, project_delta, spsa_scalars
from protocol.domain_types import ModelHash
from protocol.identity import NodeKey
from protocol.layout import ParamLayout
from protocol.messages import Contribution
from protocol.netconfig import NetworkConfig
from protocol.perturb import DirectionSpec
from protocol.quantize import quantize
from protocol.signing import seal
from training.model import GPT
from training.tasks.task import Batch

NamedTensors = Sequence[tuple[str, torch.Tensor]]


@dataclass(frozen=True)
class WorkConfig:
    """How a miner computes its scalars (the codec and K are also network rules)."""

    codec: Codec
    scalars: int
    direction: DirectionSpec
    spsa_eps: float
    local_steps: int
    local_lr: float
    local_weight_decay: float

    @classmethod
    def of(cls, network: NetworkConfig) -> WorkConfig:
        """How ``network``'s miners compute: network rules, so a validator can recompute them."""
        return cls(
            codec=network.codec, scalars=network.scalars, direction=network.direction,
            spsa_eps=network.spsa_eps, local_steps=network.local_steps,
            local_lr=network.local_lr, local_weight_decay=network.local_weight_decay,
        )


@dataclass(frozen=True)
class RoundInfo:
    """The public facts of the round a contribution belongs to."""

    network_id: str
    round_index: int
    base_model_hash: ModelHash
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class WorkResult:
    """A sealed contribution, its decoded form, and the raw (unquantized) scalars."""

    sealed: bytes
    contribution: Contribution
    raw_scalars: tuple[float, ...]
    compute_s: float


def zo_scalars(
    model: GPT, named: NamedTensors, batch: Batch, seeds: Sequence[int], eps: float,
    spec: DirectionSpec,
) -> list[float]:
    """One central-difference scalar per seed of the loss on ``batch``, in eval mode."""
    params = [t for _, t in named]
    layout = ParamLayout.of(named)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return spsa_scalars(
                lambda: float(model.loss(batch)), params, layout, seeds, eps, spec
            )
    finally:
        model.train(was_training)


def local_adamw_delta(
    model: GPT, named: NamedTensors, batches: Sequence[Batch], lr: float, weight_decay: float
) -> list[torch.Tensor]:
    """``θ_start − θ_end`` after one AdamW step per batch; the parameters are restored exactly."""
    params = [t for _, t in named]
    start = [p.detach().clone() for p in params]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    was_training = model.training
    model.train()
    try:
        for batch in batches:
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(model.loss(batch))
            optimizer.step()
        with torch.no_grad():
            delta = [s - p.detach() for s, p in zip(start, params, strict=True)]
    finally:
        with torch.no_grad():
            for p, s in zip(params, start, strict=True):
                p.copy_(s)
                p.grad = None
        model.train(was_training)
    return delta


def fo_scalars(
    model: GPT, named: NamedTensors, batches: Sequence[Batch], seeds: Sequence[int],
    config: WorkConfig,
) -> tuple[tuple[int, ...], list[float]]:
    """Block counts and projection coordinates of a local AdamW pseudo-gradient."""
    delta = local_adamw_delta(model, named, batches, config.local_lr, config.local_weight_decay)
    layout = ParamLayout.of(named)
    block_counts = tuple(allocate_blocks(block_norms(delta), len(seeds)))
    scalars = project_delta(delta, layout, seeds, config.direction, block_counts)
    return block_counts, scalars


def split_batches(indices: Sequence[int], parts: int) -> list[list[int]]:
    """``indices`` cut into ``parts`` contiguous, nearly equal, non-empty pieces."""
    parts = max(1, min(parts, len(indices)))
    size, extra = divmod(len(indices), parts)
    pieces: list[list[int]] = []
    start = 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        pieces.append(list(indices[start:end]))
        start = end
    return pieces


def make_contribution(
    key: NodeKey, info: RoundInfo, config: WorkConfig, block_counts: Sequence[int],
    scalars: Sequence[float], *, sequence: int, compute_ms: int,
) -> Contribution:
    """The unsigned contribution carrying ``scalars`` quantized to one byte each."""
    q = quantize(scalars, key=info.seeds[0])
    return Contribution(
        network_id=info.network_id,
        round_index=info.round_index,
        sender=key.public.raw,
        sequence=sequence,
        base_model_hash=info.base_model_hash,
        codec=config.codec.value,
        direction=config.direction.kind.value,
        rank=config.direction.rank,
        block_counts=tuple(block_counts),
        scale=q.scale,
        codes=q.codes,
        compute_ms=compute_ms,
    )


def do_work(
    key: NodeKey, model: GPT, named: NamedTensors, batches: Sequence[Batch], info: RoundInfo,
    config: WorkConfig, *, sequence: int,
) -> WorkResult:
    """Compute, quantize and seal this miner's contribution for the round.

    ZO evaluates every seed on the concatenation of ``batches``; FO takes one AdamW step per
    batch. The model's trainable tensors are left exactly as they were.
    """
    started = time.perf_counter()
    if config.codec is Codec.ZO:
        block_counts: tuple[int, ...] = ()
        scalars = zo_scalars(
            model, named, concat_batches(batches), info.seeds, config.spsa_eps, config.direction
        )
    else:
        block_counts, scalars = fo_scalars(model, named, batches, info.seeds, config)
    compute_s = time.perf_counter() - started
    contribution = make_contribution(
        key, info, config, block_counts, scalars,
        sequence=sequence, compute_ms=round(compute_s * 1000),
    )
    return WorkResult(
        sealed=seal(contribution, key),
        contribution=contribution,
        raw_scalars=tuple(scalars),
        compute_s=compute_s,
    )


def concat_batches(batches: Sequence[Batch]) -> Batch:
    """One batch holding the samples of ``batches`` in order."""
    if len(batches) == 1:
        return batches[0]
    return Batch(
        inputs=torch.cat([b.inputs for b in batches]),
        targets=torch.cat([b.targets for b in batches]),
    )
