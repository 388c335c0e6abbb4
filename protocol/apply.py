"""Applying a round's updates to the parameters, bit-identically everywhere (a consensus rule).

Dense tensors (GAUSSIAN, RADEMACHER, and non-2-D tensors under LOWRANK)
    For each tensor, the updates that touch it are applied one by one in the given order:
    ``tmp = z * c32`` then ``p += tmp`` with ``c32`` the coefficient rounded to the parameter's
    dtype. Each op is an IEEE operation rounded once, so the result does not depend on vector
    width or thread count (a fused ``add_(z, alpha=c)`` would: torch uses FMA only on some paths).

Low-rank 2-D tensors (exact fixed-point accumulation)
    All the round's terms on a tensor are summed in one float64 matrix product, made exact:
    with C rank-one terms in total (updates x rank), the coefficients ``c_k / sqrt(r)`` are
    rounded (half to even) to integers ``q_k`` on the grid ``2**-s``, where ``s`` puts the
    largest |coefficient| just below ``2**B`` and ``B = min(40, 52 - ceil(log2 C))``. Every
    product of a +-1 factor with ``q_k`` and every partial sum is then an integer of magnitude
    below ``2**52``, so the float64 product is exact whatever the BLAS blocking, order or
    threads. The exact sum times ``2**-s`` is rounded once to the parameter dtype and added.
    Precision: each coefficient carries an absolute error of at most ``2**-(B+1)`` times the
    largest |coefficient| of that tensor in the round (40 bits for up to 4096 terms, i.e. a
    relative error ~1e-12 of the largest term: far below float32 resolution).

Hence ``apply_updates_`` with several LOWRANK updates is not the same as calling
``add_scaled_direction_`` for each (one final rounding instead of one per term); both are
deterministic and every node uses ``apply_updates_`` for a round. Directions are generated on
the CPU and moved to the parameters' device. Do not enable ``torch.set_flush_denormal``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from protocol.errors import ConfigError, ConsensusError
from protocol.layout import ParamLayout
from protocol.perturb import (
    DirectionSpec,
    Update,
    dense_rows,
    is_lowrank_tensor,
    lowrank_factor_rows,
)

__all__ = ["Update", "add_scaled_direction_", "apply_updates_", "lowrank_grid"]

MAX_GRID_BITS = 40
EXACT_BITS = 52  # float64 integers below 2**53 are exact; keep one bit of margin
# Rank-one terms per float64 matmul: bounds the size of the stacked factors, not exactness.
_TERMS_PER_MATMUL = 1024
_FLOATS_PER_BATCH = 1 << 18


def apply_updates_(
    params: Sequence[torch.Tensor],
    layout: ParamLayout,
    updates: Sequence[Update],
    spec: DirectionSpec,
) -> None:
    """Apply ``updates`` in place, in the given order, bit-identically on every node."""
    layout.check_params(params)
    for update in updates:
        _check_update(update, len(layout))
    with torch.no_grad():
        for t, param in enumerate(params):
            terms = [u for u in updates if u.block is None or u.block == t]
            if not terms:
                continue
            if is_lowrank_tensor(layout.shapes[t], spec):
                _apply_lowrank_(param, t, terms, spec.rank)
            else:
                _apply_dense_(param, t, terms, spec)


def add_scaled_direction_(
    params: Sequence[torch.Tensor],
    layout: ParamLayout,
    seed: int,
    coeff: float,
    spec: DirectionSpec,
    block: int | None = None,
) -> None:
    """``params += coeff * z(seed)`` (only on tensor ``block`` if given), by the apply rule."""
    apply_updates_(params, layout, [Update(seed=seed, coeff=coeff, block=block)], spec)


def _check_update(update: Update, num_tensors: int) -> None:
    if update.block is not None and not 0 <= update.block < num_tensors:
        raise ConfigError(f"update block {update.block} out of range ({num_tensors} tensors)")
    if not math.isfinite(update.coeff):
        raise ConsensusError(f"non-finite update coefficient {update.coeff!r}")


def _apply_dense_(
    param: torch.Tensor, t: int, terms: Sequence[Update], spec: DirectionSpec
) -> None:
    """Term by term in order: ``tmp = z * c`` then ``param += tmp`` (two rounded IEEE ops)."""
    numel = param.numel()
    # Small tensors: generate several terms' directions in one batched pass (same numbers).
    per_batch = max(1, _FLOATS_PER_BATCH // max(numel, 1))
    flat = param.view(-1)
    for start in range(0, len(terms), per_batch):
        batch = terms[start : start + per_batch]
        zs = dense_rows([u.seed for u in batch], t, numel, spec)
        zs = zs.to(device=param.device, dtype=param.dtype)
        coeffs = torch.tensor([u.coeff for u in batch], dtype=torch.float64)
        coeffs = coeffs.to(param.dtype).to(param.device)
        for k in range(len(batch)):
            flat.add_(zs[k].mul_(coeffs[k]))


def lowrank_grid(coeffs: Sequence[float], num_terms: int) -> tuple[list[int], int]:
    """Integers q_k and exponent s with ``coeffs[k] ~= q_k * 2**-s`` (see the module doc)."""
    bits = min(MAX_GRID_BITS, EXACT_BITS - max(0, math.ceil(math.log2(max(num_terms, 1)))))
    if bits < 8:
        raise ConfigError(f"too many low-rank terms ({num_terms}) for exact accumulation")
    largest = max((abs(c) for c in coeffs), default=0.0)
    if largest == 0.0:
        return [0] * len(coeffs), 0
    shift = bits - math.frexp(largest)[1]  # largest * 2**shift < 2**bits
    return [round(math.ldexp(c, shift)) for c in coeffs], shift


def _apply_lowrank_(param: torch.Tensor, t: int, terms: Sequence[Update], rank: int) -> None:
    shape = tuple(param.shape)
    inv_sqrt_rank = 1.0 / math.sqrt(rank)
    q, shift = lowrank_grid([u.coeff * inv_sqrt_rank for u in terms], len(terms) * rank)
    if all(v == 0 for v in q):
        return
    total = torch.zeros(shape, dtype=torch.float64, device=param.device)
    per_matmul = max(1, _TERMS_PER_MATMUL // rank)
    for start in range(0, len(terms), per_matmul):
        stop = start + per_matmul
        group = [(u, qk) for u, qk in zip(terms[start:stop], q[start:stop], strict=True) if qk]
        if group:
            total.add_(_exact_integer_sum(group, t, shape, rank, param.device))
    # Multiplying by a power of two is exact; the conversion to the parameter dtype rounds once.
    delta = total.mul_(math.ldexp(1.0, -shift)).to(param.dtype)
    param.add_(delta)


def _exact_integer_sum(
    group: Sequence[tuple[Update, int]],
    t: int,
    shape: tuple[int, ...],
    rank: int,
    device: torch.device,
) -> torch.Tensor:
    """sum_k q_k U_k^T V_k in float64, every partial sum an integer below 2**52 (exact)."""
    u, v = lowrank_factor_rows([update.seed for update, _ in group], t, shape, rank)
    q = torch.tensor([float(qk) for _, qk in group], dtype=torch.float64)
    left = u.to(torch.float64).mul_(q.repeat_interleave(rank).unsqueeze(1))  # entries +-q_k
    left = left.to(device)
    right = v.to(device=device, dtype=torch.float64)  # entries +-1
    return left.t().matmul(right)
