"""The two pseudo-gradient codecs and how a certified contribution becomes update terms.

* ZO (zeroth order, ``protocol.spsa``): K SPSA scalars g_i over the whole trainable vector;
  the update is ``θ ← θ − lr · w · (1/K) Σ_i g_i z(s_i)``, an unbiased gradient estimate.
* FO (first order, ``protocol.projection``): K projection coordinates γ_i of Δ = θ_start −
  θ_end, each on one block; the update is ``θ ← θ − lr · w · Σ_i γ_i z_b(i)(s_i)``, an unbiased
  reconstruction of Δ scaled by the outer learning rate.

Scalars here are always the dequantized ones, which every replica applies. The coefficient is
computed as ``((−lr) · w) · g / K`` (ZO) or ``((−lr) · w) · γ`` (FO), in that order, in binary64:
it is part of the consensus rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum

from protocol.apply import Update
from protocol.errors import ConfigError
from protocol.projection import (
    DIRECTION_VARIANCE,
    allocate_blocks,
    block_norms,
    project_delta,
    seed_blocks,
)
from protocol.spsa import spsa_scalars

__all__ = [
    "DIRECTION_VARIANCE",
    "Codec",
    "allocate_blocks",
    "block_norms",
    "contribution_updates",
    "project_delta",
    "seed_blocks",
    "spsa_scalars",
]


class Codec(StrEnum):
    """How a contribution's scalars were made: SPSA (zeroth order) or projection (first order)."""

    ZO = "zo"
    FO = "fo"


def contribution_updates(
    codec: Codec | str,
    seeds: Sequence[int],
    scalars: Sequence[float],
    block_counts: Sequence[int],
    lr: float,
    weight: float,
) -> list[Update]:
    """The update terms of one certified contribution, in seed order.

    ``block_counts`` must be empty for ZO and sum to ``len(seeds)`` for FO.
    """
    try:
        codec = Codec(codec)
    except ValueError as exc:
        raise ConfigError(f"unknown codec {codec!r}") from exc
    if len(seeds) != len(scalars):
        raise ConfigError(f"{len(seeds)} seeds but {len(scalars)} scalars")
    if not all(math.isfinite(x) for x in (lr, weight, *scalars)):
        raise ConfigError("lr, weight and scalars must be finite")
    factor = -lr * weight
    if codec is Codec.ZO:
        if block_counts:
            raise ConfigError("a zeroth-order contribution has no block counts")
        k = len(seeds)
        return [Update(seed=s, coeff=factor * g / k) for s, g in zip(seeds, scalars, strict=True)]
    blocks = seed_blocks(block_counts)
    if len(blocks) != len(seeds):
        raise ConfigError(f"block counts sum to {len(blocks)} but there are {len(seeds)} seeds")
    return [
        Update(seed=s, coeff=factor * gamma, block=b)
        for s, gamma, b in zip(seeds, scalars, blocks, strict=True)
    ]
