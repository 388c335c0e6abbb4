"""First-order scalars: Ferret-style block-wise random projection of a local update.

A miner runs local optimizer steps from θ_start to θ_end and sends the pseudo-gradient
``Δ = θ_start − θ_end`` (a descent direction) as K coordinates along shared-random directions.
The blocks are the tensors of the layout; block l gets ``K_l`` seeds and each seed i on block
l carries ``γ_i = v_iᵀ Δ_l / (ρ K_l)``, where ``v_i`` is the seed's direction restricted to
block l and ``ρ`` the per-entry variance of the canonical directions (1 for every kind in
``protocol.perturb``).

Why this is unbiased: the reconstruction is ``Δ̃_l = Σ_i γ_i v_i = (ρ K_l)⁻¹ Σ_i v_i v_iᵀ Δ_l``.
The directions are independent with ``E[v vᵀ] = ρ I``, so ``E[Δ̃_l] = Δ_l``. Unlike Ferret's
entries (truncated normals, ρ ≈ 1/3d), ours are unit variance, so ρ = 1 and no d appears.
For Gaussian directions ``E‖Δ̃_l − Δ_l‖² = (d_l + 1)‖Δ_l‖² / K_l``, which gives
``cos(Δ̃, Δ) ≈ sqrt(K / (d + K))`` with a single block.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import torch

from protocol.errors import ConfigError
from protocol.layout import ParamLayout
from protocol.perturb import DirectionSpec, direction

DIRECTION_VARIANCE = 1.0  # ρ: E[v vᵀ] = ρ I for every canonical direction kind


def seed_blocks(block_counts: Sequence[int]) -> list[int]:
    """The block of each seed: the first ``block_counts[0]`` seeds go to block 0, and so on."""
    if any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in block_counts):
        raise ConfigError(f"block counts must be non-negative integers, got {block_counts!r}")
    return [b for b, k in enumerate(block_counts) for _ in range(k)]


def allocate_blocks(block_norms: Sequence[float], total: int) -> tuple[int, ...]:
    """Seeds per block, ∝ block norm, summing exactly to ``total``.

    Every block with a nonzero norm gets at least one seed (so no part of Δ is dropped) and
    the other ``total − #nonzero`` seeds go by largest remainder on exact rational quotas (ties:
    the larger norm, then the lower index). Zero-norm blocks get none: Δ is zero there. If all
    norms are zero the seeds are spread evenly. If ``total`` is below the number of nonzero
    blocks, only the ``total`` largest get one seed each and the rest of Δ is dropped (biased):
    configure K at least the number of trainable tensors.
    """
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise ConfigError(f"total must be a non-negative integer, got {total!r}")
    if not all(math.isfinite(x) and x >= 0.0 for x in block_norms):
        raise ConfigError("block norms must be finite and non-negative")
    if not block_norms:
        if total:
            raise ConfigError("cannot allocate seeds to zero blocks")
        return ()
    norms = [Fraction(x) for x in block_norms]
    if not any(norms):
        norms = [Fraction(1)] * len(norms)
    nonzero = [i for i, n in enumerate(norms) if n > 0]
    by_size = sorted(nonzero, key=lambda i: (-norms[i], i))
    counts = [0] * len(norms)
    if total < len(nonzero):
        for i in by_size[:total]:
            counts[i] = 1
        return tuple(counts)
    spare = total - len(nonzero)
    norm_sum = sum(norms)
    quotas = {i: spare * norms[i] / norm_sum for i in nonzero}
    for i in nonzero:
        counts[i] = 1 + math.floor(quotas[i])
    leftover = total - sum(counts)
    by_remainder = sorted(nonzero, key=lambda i: (-(quotas[i] % 1), -norms[i], i))
    for i in by_remainder[:leftover]:
        counts[i] += 1
    return tuple(counts)


def block_norms(delta: Sequence[torch.Tensor]) -> list[float]:
    """The Euclidean norm of each tensor of ``delta`` (computed in float64)."""
    return [float(torch.linalg.vector_norm(t.detach().double())) for t in delta]


def project_delta(
    delta: Sequence[torch.Tensor],
    layout: ParamLayout,
    seeds: Sequence[int],
    spec: DirectionSpec,
    block_counts: Sequence[int],
) -> list[float]:
    """The coordinates γ_i of ``delta`` along the seeds' directions, block by block (unbiased)."""
    layout.check_params(delta)
    if len(block_counts) != len(layout):
        raise ConfigError(f"{len(block_counts)} block counts for {len(layout)} tensors")
    blocks = seed_blocks(block_counts)
    if len(blocks) != len(seeds):
        raise ConfigError(f"block counts sum to {len(blocks)} but there are {len(seeds)} seeds")
    flat = [t.detach().reshape(-1).to(device="cpu", dtype=torch.float64) for t in delta]
    gammas = []
    for seed, b in zip(seeds, blocks, strict=True):
        v = direction(seed, layout, spec, blocks=[b])[0].reshape(-1).double()
        gammas.append(float(torch.dot(v, flat[b])) / (DIRECTION_VARIANCE * block_counts[b]))
    return gammas
