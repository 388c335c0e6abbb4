"""The seams of a simulated round: who works, and who decides what a round includes.

A ``Miner`` turns a ``RoundContext`` into the bytes it publishes (a sealed contribution, or
anything an attacker cares to send); a ``RoundCertifier`` turns the contributions that passed
signature checks into the certified set and its weights. The honest implementations live here;
validators' scoring and attackers plug in through the same two protocols.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

import torch

from node.model import GPT
from node.replica import CertifiedEntry
from node.tasks.base import Batch, Task
from node.work import RoundInfo, WorkConfig, WorkResult, do_work, split_batches
from protocol.assignment import assign_samples
from protocol.identity import NodeKey
from protocol.messages import WEIGHT_ONE_PPB, Contribution
from protocol.randomness import contribution_seeds


@dataclass(frozen=True)
class RoundContext:
    """Everything a miner may look at in round ``round_index``.

    ``model`` holds the round's certified parameters (``named`` are its trainable tensors, in
    canonical order); a miner must leave them as it found them.
    """

    network_id: str
    round_index: int
    beacon: bytes
    base_model_hash: bytes
    model: GPT
    named: Sequence[tuple[str, torch.Tensor]]
    task: Task
    miner_keys: Sequence[bytes]
    samples_per_miner: int
    work: WorkConfig

    def miner_index(self, public_key: bytes) -> int:
        """A miner's slot in the round's data assignment (its rank by public key)."""
        return sorted(self.miner_keys).index(public_key)

    def assigned_samples(self, public_key: bytes) -> list[int]:
        """The training-sample indices the protocol assigns to ``public_key`` this round."""
        return assign_samples(
            self.beacon,
            self.task.num_train_samples(),
            self.miner_index(public_key),
            self.samples_per_miner,
        )

    def seeds(self, public_key: bytes, count: int | None = None) -> list[int]:
        """The first ``count`` (default: the network's K) seeds of ``public_key`` this round."""
        k = self.work.scalars if count is None else count
        return contribution_seeds(self.network_id, self.beacon, public_key, self.round_index, k)


class Miner(Protocol):
    """A participant that publishes one message per round."""

    key: NodeKey

    def work(self, ctx: RoundContext) -> bytes:
        """The bytes this miner publishes in the round of ``ctx``."""
        ...


class RoundCertifier(Protocol):
    """Decides which contributions a round includes and with what weights."""

    def certify(
        self, ctx: RoundContext, contributions: Sequence[Contribution]
    ) -> list[CertifiedEntry]:
        """The certified (contribution, weight) entries of the round of ``ctx``."""
        ...


@runtime_checkable
class EnvelopeCertifier(Protocol):
    """A certifier that wants the round's messages as published (a validator's pipeline runs
    the signature, replay and deadline checks itself)."""

    def certify_envelopes(
        self, ctx: RoundContext, envelopes: Sequence[bytes]
    ) -> list[CertifiedEntry]:
        """The certified (contribution, weight) entries, from the raw published messages."""
        ...


class HonestMiner:
    """Computes its scalars on exactly the data and seeds the protocol assigns it.

    ``scalars`` is its capacity K (at most the network's; default the network's). ``data_noise``
    > 0 models an honest operator whose local copy of the data is corrupted: that fraction of
    its target tokens is replaced at random (a validator recomputing on the true data sees
    scalars that differ, exactly as for a miner training on the wrong data).
    """

    def __init__(self, key: NodeKey, scalars: int | None = None, data_noise: float = 0.0) -> None:
        self.key = key
        self.scalars = scalars
        self.data_noise = data_noise
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
        batches = [ctx.task.train_batch(part) for part in split_batches(indices, parts)]
        if self.data_noise > 0.0:
            batches = [corrupt_targets(b, self.data_noise, ctx.task.vocab_size,
                                       seed=ctx.round_index * 1_000_003 + i)
                       for i, b in enumerate(batches)]
        return batches

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


def corrupt_targets(batch: Batch, fraction: float, vocab_size: int, seed: int) -> Batch:
    """``batch`` with about ``fraction`` of its targets replaced by random tokens."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(batch.targets.shape, generator=generator) < fraction
    random_tokens = torch.randint(0, vocab_size, batch.targets.shape, generator=generator)
    return Batch(batch.inputs, torch.where(noise, random_tokens, batch.targets))


class EqualWeightCertifier:
    """Includes the well-formed contributions of the round, with equal weights summing to 1.

    At most ``limit`` are included (the network's ``max_contributions_per_round``), the first by
    sender key: an honest-only stand-in for a validator's top-G by score.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def certify(
        self, ctx: RoundContext, contributions: Sequence[Contribution]
    ) -> list[CertifiedEntry]:
        """Equal weights over the admissible contributions, one per sender."""
        chosen: dict[bytes, Contribution] = {}
        for c in contributions:
            if _admissible(ctx, c) and c.sender not in chosen:
                chosen[c.sender] = c
        if not chosen:
            return []
        chosen = dict(sorted(chosen.items())[: self.limit])
        # A certificate carries weights in parts per billion; use exactly what it can carry.
        weight = (WEIGHT_ONE_PPB // len(chosen)) / WEIGHT_ONE_PPB
        return [(c, weight) for c in chosen.values()]


def _admissible(ctx: RoundContext, c: Contribution) -> bool:
    """Format checks only: this round, this model, a registered sender, the network's codec."""
    spec = ctx.work.spec
    return (
        c.network_id == ctx.network_id
        and c.round_index == ctx.round_index
        and c.base_model_hash == ctx.base_model_hash
        and c.sender in ctx.miner_keys
        and c.codec == ctx.work.codec.value
        and c.direction == spec.kind.value
        and c.rank == spec.rank
    )
