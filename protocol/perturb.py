"""Random directions z(seed) over the trainable parameters (a consensus rule).

A direction is materialized tensor by tensor. The numbers on tensor t depend only on
(seed, t, kind): ``tensor_key(seed, t, stream)`` derives an independent 64-bit key per tensor
and per stream, and ``protocol.gaussian`` turns a key into numbers. Restricting a direction to
a block (a subset of tensors) therefore gives exactly the same numbers as the full direction.

Kinds (all with E[z z^T] = I, i.e. unbiased SPSA / projection estimators):

* GAUSSIAN: every element from ``canonical_gaussian`` (stream 0).
* RADEMACHER: every element +-1 from ``canonical_rademacher`` (stream 1).
* LOWRANK(r): a 2-D tensor (m x n) gets ``z = (1/sqrt(r)) * sum_a u_a v_a^T`` with
  u_a in {+-1}^m (stream 2, u_a = elements [a*m, (a+1)*m)) and v_a in {+-1}^n (stream 3,
  likewise); E[z z^T] = I because the factors are independent, zero-mean, unit-variance.
  A tensor that is not 2-D gets the dense GAUSSIAN numbers (stream 0).

Directions are always generated on the CPU (CUDA generators differ between devices) and then
moved by the caller.

Batched generation (same numbers): ``seed_keys`` / ``tensor_keys`` derive the keys of many
seeds in one vectorized pass, and a ``DenseSlab`` lays the dense directions of several tensors
side by side so that the rows of many seeds, or any column block of them, come from one pass
of the generator. ``tensor_key`` and ``tensor_direction`` are the one-seed definitions.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
import torch

from protocol.errors import ConfigError
from protocol.gaussian import (
    GAUSSIAN_PER_WORD,
    GOLDEN_GAMMA,
    MASK64,
    RADEMACHER_PER_WORD,
    Floats,
    Words,
    canonical_gaussian,
    canonical_rademacher,
    fmix64,
    fmix64_array,
    gaussian_from_words,
    gaussian_rows,
    rademacher_from_words,
    rademacher_rows,
    stream_words_,
)
from protocol.layout import ParamLayout

__all__ = [
    "DenseSlab",
    "DirectionKind",
    "DirectionSpec",
    "Update",
    "canonical_gaussian",
    "canonical_rademacher",
    "dense_rows",
    "direction",
    "lowrank_factor_rows",
    "lowrank_factors",
    "seed_keys",
    "tensor_direction",
    "tensor_key",
    "tensor_keys",
]

STREAM_GAUSSIAN = 0
STREAM_RADEMACHER = 1
STREAM_LOWRANK_U = 2
STREAM_LOWRANK_V = 3

# Odd constants that separate tensor indices and streams before the final mix.
_TENSOR_MUL = 0xD6E8FEB86659FD93
_STREAM_MUL = 0xA0761D6478BD642F


class DirectionKind(StrEnum):
    """How a direction's numbers are laid out over a tensor."""

    GAUSSIAN = "gaussian"
    RADEMACHER = "rademacher"
    LOWRANK = "lowrank"


@dataclass(frozen=True)
class DirectionSpec:
    """Kind of direction; ``rank`` is used only by LOWRANK (2-D tensors get rank-r products)."""

    kind: DirectionKind = DirectionKind.GAUSSIAN
    rank: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.kind, DirectionKind):
            raise ConfigError(f"unknown direction kind {self.kind!r}")
        if self.rank < 1:
            raise ConfigError(f"direction rank must be >= 1, got {self.rank}")


@dataclass(frozen=True)
class Update:
    """One term of a round's update: ``params += coeff * z(seed)``.

    ``coeff`` already includes -lr, the certificate weight and the codec's scale. ``block`` is
    None for the whole trainable vector, else the index of the single tensor it touches.
    """

    seed: int
    coeff: float
    block: int | None = None


def tensor_key(seed: int, tensor_index: int, stream: int) -> int:
    """The 64-bit generator key of tensor ``tensor_index`` and ``stream`` under ``seed``.

    ``seed`` is any u64 (a seed of 2**64 or more would alias one below it); the tensor index
    and the stream are non-negative integers. Raises ConfigError otherwise.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MASK64:
        raise ConfigError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    for name, value in (("tensor index", tensor_index), ("stream", stream)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")
    seed_key = fmix64(seed + GOLDEN_GAMMA)
    return fmix64(seed_key + (tensor_index + 1) * _TENSOR_MUL + stream * _STREAM_MUL) & MASK64


def seed_keys(seeds: Sequence[int]) -> Words:
    """``fmix64(seed + GOLDEN_GAMMA)`` for every seed (uint64): the part of ``tensor_key`` that
    does not depend on the tensor, computed once per seed for all tensors and streams."""
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MASK64:
            raise ConfigError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    raw = np.array(seeds, dtype=np.uint64) if seeds else np.zeros(0, dtype=np.uint64)
    return fmix64_array(raw + np.uint64(GOLDEN_GAMMA))


def tensor_keys(keys_of_seeds: Words, tensor_index: int, stream: int) -> Words:
    """``tensor_key(seed, tensor_index, stream)`` for every seed, from ``seed_keys(seeds)``."""
    for name, value in (("tensor index", tensor_index), ("stream", stream)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")
    offset = ((tensor_index + 1) * _TENSOR_MUL + stream * _STREAM_MUL) & MASK64
    return fmix64_array(keys_of_seeds + np.uint64(offset))


def is_lowrank_tensor(shape: tuple[int, ...], spec: DirectionSpec) -> bool:
    """Whether a tensor of ``shape`` gets a low-rank direction under ``spec``."""
    return spec.kind is DirectionKind.LOWRANK and len(shape) == 2


def lowrank_factors(
    seed: int, tensor_index: int, shape: tuple[int, ...], rank: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The +-1 factors (U: rank x m, V: rank x n) of a low-rank direction on a 2-D tensor."""
    m, n = shape
    u = canonical_rademacher(tensor_key(seed, tensor_index, STREAM_LOWRANK_U), rank * m)
    v = canonical_rademacher(tensor_key(seed, tensor_index, STREAM_LOWRANK_V), rank * n)
    return u.view(rank, m), v.view(rank, n)


def lowrank_factor_rows(
    seeds: Sequence[int], tensor_index: int, shape: tuple[int, ...], rank: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The factors of many seeds stacked: U (len(seeds)*rank x m), V (len(seeds)*rank x n)."""
    m, n = shape
    keys = seed_keys(seeds)
    u = rademacher_rows(tensor_keys(keys, tensor_index, STREAM_LOWRANK_U), rank * m)
    v = rademacher_rows(tensor_keys(keys, tensor_index, STREAM_LOWRANK_V), rank * n)
    return u.reshape(len(keys) * rank, m), v.reshape(len(keys) * rank, n)


def dense_rows(
    seeds: Sequence[int], tensor_index: int, numel: int, spec: DirectionSpec
) -> torch.Tensor:
    """Row k is the flattened dense direction of ``seeds[k]`` on the tensor (not LOWRANK 2-D)."""
    keys = seed_keys(seeds)
    if spec.kind is DirectionKind.RADEMACHER:
        return rademacher_rows(tensor_keys(keys, tensor_index, STREAM_RADEMACHER), numel)
    return gaussian_rows(tensor_keys(keys, tensor_index, STREAM_GAUSSIAN), numel)


# Slots of a DenseSlab are a multiple of this many floats: whole words of both generators.
SLOT_ALIGN = RADEMACHER_PER_WORD


@dataclass(frozen=True)
class DenseSlab:
    """The dense directions of several tensors laid side by side in one row per seed.

    Tensor ``tensors[i]`` occupies columns ``offsets[i] .. offsets[i] + numels[i]`` of a row;
    each slot is padded to a multiple of ``SLOT_ALIGN`` floats (its stream's next numbers, never
    part of a direction). Any block of columns starting and ending on a multiple of
    ``SLOT_ALIGN`` can be generated for many seeds in one vectorized pass (``fill``).
    """

    tensors: tuple[int, ...]
    numels: tuple[int, ...]
    spec: DirectionSpec

    def __post_init__(self) -> None:
        if len(self.tensors) != len(self.numels) or any(n < 0 for n in self.numels):
            raise ConfigError(f"one size >= 0 per tensor expected, got {self.numels!r}")

    @functools.cached_property
    def offsets(self) -> tuple[int, ...]:
        """Start column of each slot, then the total width."""
        out = [0]
        for numel in self.numels:
            out.append(out[-1] + -(-numel // SLOT_ALIGN) * SLOT_ALIGN)
        return tuple(out)

    @property
    def width(self) -> int:
        """Columns of a row (the padded total)."""
        return self.offsets[-1]

    @property
    def _stream(self) -> int:
        return STREAM_RADEMACHER if self.spec.kind is DirectionKind.RADEMACHER else STREAM_GAUSSIAN

    @property
    def _per_word(self) -> int:
        rademacher = self.spec.kind is DirectionKind.RADEMACHER
        return RADEMACHER_PER_WORD if rademacher else GAUSSIAN_PER_WORD

    @functools.cached_property
    def _word_plan(self) -> tuple[npt.NDArray[np.intp], Words]:
        """Per word of a row: its slot, and ``(j + 1) * GOLDEN_GAMMA`` for its index j in it."""
        slots, gammas = [], []
        for i in range(len(self.tensors)):
            count = (self.offsets[i + 1] - self.offsets[i]) // self._per_word
            slots.append(np.full(count, i, dtype=np.intp))
            j = np.arange(1, count + 1, dtype=np.uint64)
            gammas.append(j * np.uint64(GOLDEN_GAMMA))
        if not slots:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.uint64)
        return np.concatenate(slots), np.concatenate(gammas)

    def keys(self, keys_of_seeds: Words) -> Words:
        """(seeds x tensors) generator keys, from ``seed_keys(seeds)``."""
        out = np.empty((len(keys_of_seeds), len(self.tensors)), dtype=np.uint64)
        for i, t in enumerate(self.tensors):
            out[:, i] = tensor_keys(keys_of_seeds, t, self._stream)
        return out

    def fill(self, keys: Words, start: int, stop: int, out: Floats) -> None:
        """Columns ``start .. stop`` of the rows of the seeds whose ``keys`` (rows of
        ``self.keys``) are given, into ``out`` (rows x (stop - start), C-contiguous)."""
        per_word = self._per_word
        if start % SLOT_ALIGN or (stop % SLOT_ALIGN and stop != self.width):
            raise ConfigError(f"columns {start}..{stop} do not start and end on whole words")
        slots, gammas = self._word_plan
        w0, w1 = start // per_word, stop // per_word
        x = np.take(keys, slots[w0:w1], axis=1)  # (rows x words) keys of each word's tensor
        np.add(x, gammas[np.newaxis, w0:w1], out=x)
        stream_words_(x, np.empty_like(x))
        if per_word == RADEMACHER_PER_WORD:
            rademacher_from_words(x, out)
        else:
            gaussian_from_words(x, out)


def tensor_direction(
    seed: int, tensor_index: int, shape: tuple[int, ...], spec: DirectionSpec
) -> torch.Tensor:
    """The part of z(seed) on one tensor, float32 on the CPU, shaped like the tensor."""
    numel = math.prod(shape)
    if spec.kind is DirectionKind.RADEMACHER:
        key = tensor_key(seed, tensor_index, STREAM_RADEMACHER)
        return canonical_rademacher(key, numel).view(shape)
    if is_lowrank_tensor(shape, spec):
        u, v = lowrank_factors(seed, tensor_index, shape, spec.rank)
        # Entries of u^T v are integers <= rank: exact in float32 whatever the BLAS order.
        product = u.t().matmul(v)
        return product.mul_(torch.tensor(1.0 / math.sqrt(spec.rank), dtype=torch.float32))
    key = tensor_key(seed, tensor_index, STREAM_GAUSSIAN)
    return canonical_gaussian(key, numel).view(shape)


def direction(
    seed: int, layout: ParamLayout, spec: DirectionSpec, blocks: Sequence[int] | None = None
) -> list[torch.Tensor]:
    """z(seed) per tensor: aligned with ``blocks`` if given, else with all tensors of ``layout``."""
    indices = range(len(layout)) if blocks is None else blocks
    out = []
    for t in indices:
        if not 0 <= t < len(layout):
            raise ConfigError(f"block {t} out of range for a layout of {len(layout)} tensors")
        out.append(tensor_direction(seed, t, layout.shapes[t], spec))
    return out
