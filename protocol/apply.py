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

How the dense rule is computed at the generator's speed (the numbers are the rule's, bit for
bit, whatever the batch sizes): the tensors that share the same terms and dtype are laid side
by side in one row per term (``perturb.DenseSlab``); for a batch of terms, the keys of every
(seed, tensor) pair are derived in one vectorized pass, the directions of the whole batch are
generated in one pass, ``tmp = z * c`` is one elementwise product over the batch, and the rows
are then added to the accumulator one after the other, in the terms' order (a vector add per
term, over a column block of the accumulator that stays in cache). Elementwise IEEE products
and sums do not depend on vector width, thread count or batch shape, so this equals the
term-by-term definition exactly; float32 / float64 tensors are computed with numpy on the CPU
(one copy of the tensor each way), other dtypes with torch ops on the tensor's device.
A float matrix product would need an exact fixed-point sum to be deterministic, and the
Gaussian numbers span 42 bits (values up to 4.33, ulps down to 2**-39), which leaves too few
grid bits for the coefficients at thousands of terms; the in-order accumulation reads the same
bytes a matrix-vector product would, so it costs about as much, and it keeps the rule (and
every recorded vector and golden hash) unchanged.

Hence ``apply_updates_`` with several LOWRANK updates is not the same as calling
``add_scaled_direction_`` for each (one final rounding instead of one per term); both are
deterministic and every node uses ``apply_updates_`` for a round. Directions are generated on
the CPU and moved to the parameters' device. Do not enable ``torch.set_flush_denormal``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch

from protocol.errors import ConfigError, ConsensusError
from protocol.gaussian import Words
from protocol.layout import ParamLayout
from protocol.perturb import (
    DenseSlab,
    DirectionSpec,
    Update,
    is_lowrank_tensor,
    lowrank_factor_rows,
    seed_keys,
)

__all__ = ["Update", "add_scaled_direction_", "apply_updates_", "lowrank_grid"]

MAX_GRID_BITS = 40
EXACT_BITS = 52  # float64 integers below 2**53 are exact; keep one bit of margin
# Rank-one terms per float64 matmul: bounds the size of the stacked factors, not exactness.
_TERMS_PER_MATMUL = 1024
# Dense directions generated per batch (floats), and accumulator columns per block (a
# multiple of perturb.SLOT_ALIGN): cache sizes, they change no number.
_FLOATS_PER_BATCH = 1 << 18
_COLUMN_BLOCK = 1 << 14
# Parameter dtypes whose dense apply runs on numpy arrays (IEEE binary32 / binary64 ops).
_NUMPY_DTYPES: dict[torch.dtype, type[np.floating]] = {
    torch.float32: np.float32,
    torch.float64: np.float64,
}


def apply_updates_(
    params: Sequence[torch.Tensor],
    layout: ParamLayout,
    updates: Sequence[Update],
    spec: DirectionSpec,
) -> None:
    """Apply ``updates`` in place, in the given order, bit-identically on every node."""
    layout.check_params(params)
    num_tensors = len(layout)
    for update in updates:
        _check_update(update, num_tensors)
    if not updates:
        return
    keys = seed_keys([u.seed for u in updates])
    coeffs = np.array([u.coeff for u in updates], dtype=np.float64)
    blocks = np.array([-1 if u.block is None else u.block for u in updates], dtype=np.int64)
    # Dense tensors with the same terms and dtype are applied together, side by side.
    groups: dict[tuple[bytes, torch.dtype], tuple[npt.NDArray[np.intp], list[int]]] = {}
    with torch.no_grad():
        for t, param in enumerate(params):
            rows = np.flatnonzero((blocks < 0) | (blocks == t))
            if not rows.size:
                continue
            if is_lowrank_tensor(layout.shapes[t], spec):
                _apply_lowrank_(param, t, [updates[i] for i in rows.tolist()], spec.rank)
            elif param.dtype in _NUMPY_DTYPES:
                groups.setdefault((rows.tobytes(), param.dtype), (rows, []))[1].append(t)
            else:
                _apply_dense_torch_(param, t, keys[rows], coeffs[rows], spec)
        for rows, tensors in groups.values():
            _apply_dense_group_(
                [params[t] for t in tensors], tensors, keys[rows], coeffs[rows], spec
            )


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


def _apply_dense_group_(
    params: Sequence[torch.Tensor],
    tensors: Sequence[int],
    keys: Words,
    coeffs: npt.NDArray[np.float64],
    spec: DirectionSpec,
) -> None:
    """The dense rule on tensors sharing their terms and a float32 / float64 dtype.

    The tensors are laid side by side in one accumulator (a ``DenseSlab``). Column block by
    column block (so that the block stays in cache), batches of terms are generated in one
    vectorized pass, multiplied by their coefficients in one op, and added to the block one
    term after the other, in the terms' order: every element sees exactly the rounded
    operations of the rule. The numbers in the padding are never read back.
    """
    dtype = _NUMPY_DTYPES[params[0].dtype]
    slab = DenseSlab(tuple(tensors), tuple(p.numel() for p in params), spec)
    acc = np.zeros(slab.width, dtype=dtype)
    for param, off, numel in zip(params, slab.offsets, slab.numels, strict=False):
        acc[off : off + numel] = param.detach().reshape(-1).cpu().numpy()
    c = coeffs.astype(dtype)  # the coefficient rounded (to nearest even) to the dtype
    tensor_keys = slab.keys(keys)
    z_buf = np.empty(max(_FLOATS_PER_BATCH, _COLUMN_BLOCK), dtype=np.float32)
    tmp_buf = z_buf if dtype is np.float32 else np.empty(z_buf.size, dtype=dtype)
    with np.errstate(all="ignore"):  # overflow to inf is part of the rule, as in IEEE
        for col in range(0, slab.width, _COLUMN_BLOCK):
            stop_col = min(col + _COLUMN_BLOCK, slab.width)
            block = acc[col:stop_col]
            cols = stop_col - col
            per_batch = max(1, _FLOATS_PER_BATCH // cols)
            for start in range(0, len(keys), per_batch):
                stop = min(start + per_batch, len(keys))
                z = z_buf[: (stop - start) * cols].reshape(stop - start, cols)
                tmp = tmp_buf[: z.size].reshape(z.shape)
                slab.fill(tensor_keys[start:stop], col, stop_col, z)
                np.multiply(z, c[start:stop, np.newaxis], out=tmp)  # tmp = z * c, rounded once
                for row in tmp:
                    np.add(block, row, out=block)  # param += tmp, rounded once, in order
    for param, off, numel in zip(params, slab.offsets, slab.numels, strict=False):
        param.copy_(torch.from_numpy(acc[off : off + numel]).view(param.shape))


def _apply_dense_torch_(
    param: torch.Tensor, t: int, keys: Words, coeffs: npt.NDArray[np.float64], spec: DirectionSpec
) -> None:
    """The dense rule with torch ops, for the other dtypes (bfloat16, float16): ``z`` and
    ``c`` are rounded to the dtype, then ``tmp = z * c`` and ``param += tmp`` term by term."""
    numel = param.numel()
    slab = DenseSlab((t,), (numel,), spec)
    tensor_keys = slab.keys(keys)
    per_batch = max(1, _FLOATS_PER_BATCH // max(slab.width, 1))
    flat = param.view(-1)
    for start in range(0, len(keys), per_batch):
        stop = min(start + per_batch, len(keys))
        buf = np.empty((stop - start, slab.width), dtype=np.float32)
        slab.fill(tensor_keys[start:stop], 0, slab.width, buf)
        zs = torch.from_numpy(buf)[:, :numel].to(device=param.device, dtype=param.dtype)
        c = torch.from_numpy(coeffs[start:stop]).to(param.dtype).to(param.device)
        for k in range(stop - start):
            flat.add_(zs[k].mul_(c[k]))


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
