"""The apply rule: dense term by term, low-rank exact fixed-point accumulation, model hash."""

from __future__ import annotations

import hashlib
import math
import struct

import pytest
import torch

import protocol.apply as apply_mod
from protocol.apply import add_scaled_direction_, apply_updates_, lowrank_grid
from protocol.errors import ConfigError, ConsensusError
from protocol.layout import ParamLayout
from protocol.model_hash import model_hash
from protocol.perturb import (
    DirectionKind,
    DirectionSpec,
    Update,
    direction,
    lowrank_factors,
    tensor_direction,
)

LAYOUT = ParamLayout(names=("w", "b", "m"), shapes=((16, 12), (9,), (8, 20)))
LOWRANK3 = DirectionSpec(DirectionKind.LOWRANK, rank=3)


def _params(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g) for shape in LAYOUT.shapes]


def _updates(count: int, seed: int = 1) -> list[Update]:
    g = torch.Generator().manual_seed(seed)
    coeffs = (torch.randn(count, generator=g, dtype=torch.float64) * 1e-2).tolist()
    blocks: list[int | None] = [None, 0, 2, None, 1]
    return [Update(seed=1000 + k, coeff=c, block=blocks[k % 5]) for k, c in enumerate(coeffs)]


@pytest.mark.parametrize("kind", [DirectionKind.GAUSSIAN, DirectionKind.RADEMACHER])
def test_dense_apply_is_mul_then_add_in_order(kind: DirectionKind) -> None:
    spec = DirectionSpec(kind)
    params, expected = _params(), _params()
    updates = _updates(12)
    apply_updates_(params, LAYOUT, updates, spec)
    for u in updates:
        blocks = range(len(LAYOUT)) if u.block is None else [u.block]
        for t in blocks:
            z = tensor_direction(u.seed, t, LAYOUT.shapes[t], spec)
            tmp = z * torch.tensor(u.coeff, dtype=torch.float64).to(torch.float32)
            expected[t] += tmp
    assert all(torch.equal(p, e) for p, e in zip(params, expected, strict=True))


def _exact_lowrank_reference(
    param: torch.Tensor, t: int, terms: list[Update], rank: int
) -> torch.Tensor:
    """The rule computed with int64 integer arithmetic, one term at a time (no matmul)."""
    coeffs = [u.coeff * (1.0 / math.sqrt(rank)) for u in terms]
    q, shift = lowrank_grid(coeffs, len(terms) * rank)
    total = torch.zeros(param.shape, dtype=torch.int64)
    for u, qk in zip(terms, q, strict=True):
        us, vs = lowrank_factors(u.seed, t, tuple(param.shape), rank)
        for a in range(rank):
            outer = us[a].to(torch.int64).unsqueeze(1) * vs[a].to(torch.int64).unsqueeze(0)
            total += qk * outer
    assert total.abs().max().item() < 2**52
    return param + (total.to(torch.float64) * 2.0**-shift).to(torch.float32)


def test_lowrank_batched_equals_exact_integer_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    updates = _updates(40)
    params = _params()
    apply_updates_(params, LAYOUT, updates, LOWRANK3)
    for t in (0, 2):
        terms = [u for u in updates if u.block in (None, t)]
        assert torch.equal(params[t], _exact_lowrank_reference(_params()[t], t, terms, 3))
    # Splitting the terms over several matrix products changes nothing (sums are exact).
    monkeypatch.setattr(apply_mod, "_TERMS_PER_MATMUL", 4)
    chunked = _params()
    apply_updates_(chunked, LAYOUT, updates, LOWRANK3)
    assert all(torch.equal(a, b) for a, b in zip(params, chunked, strict=True))


def test_lowrank_apply_matches_float64_sum_of_directions() -> None:
    updates = _updates(30)
    params = _params()
    apply_updates_(params, LAYOUT, updates, LOWRANK3)
    for t in (0, 2):
        exact = _params()[t].to(torch.float64)
        for u in updates:
            if u.block in (None, t):
                z = tensor_direction(u.seed, t, LAYOUT.shapes[t], LOWRANK3)
                exact += u.coeff * z.to(torch.float64)
        # Only the final rounding to float32 (plus float32's 1/sqrt(3) in ``z``) separates them.
        assert (params[t].to(torch.float64) - exact).abs().max() < 1e-6


def test_lowrank_non_matrix_tensor_is_dense_gaussian() -> None:
    updates = _updates(6)
    a, b = _params(), _params()
    apply_updates_(a, LAYOUT, updates, LOWRANK3)
    apply_updates_(b, LAYOUT, updates, DirectionSpec())
    assert torch.equal(a[1], b[1])
    assert not torch.equal(a[0], b[0])


def test_lowrank_grid_precision_and_bounds() -> None:
    q, shift = lowrank_grid([0.75, -0.001, 0.0], 10)
    assert max(abs(v) for v in q) < 2**40 and abs(q[0]) >= 2**39
    assert abs(q[1] * 2.0**-shift + 0.001) <= 2.0 ** -(shift + 1)
    q_many, _ = lowrank_grid([1.0], 1 << 20)
    assert abs(q_many[0]) <= 2 ** (52 - 20)
    assert lowrank_grid([0.0, 0.0], 2) == ([0, 0], 0)


@pytest.mark.parametrize("spec", [DirectionSpec(), LOWRANK3], ids=["gaussian", "lowrank3"])
def test_block_updates_touch_only_their_tensor(spec: DirectionSpec) -> None:
    params = _params()
    add_scaled_direction_(params, LAYOUT, seed=5, coeff=0.5, spec=spec, block=2)
    before = _params()
    assert torch.equal(params[0], before[0]) and torch.equal(params[1], before[1])
    assert not torch.equal(params[2], before[2])


def test_add_scaled_direction_is_a_single_update() -> None:
    a, b = _params(), _params()
    add_scaled_direction_(a, LAYOUT, seed=3, coeff=-0.2, spec=LOWRANK3)
    apply_updates_(b, LAYOUT, [Update(seed=3, coeff=-0.2)], LOWRANK3)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    zero = [torch.zeros(s) for s in LAYOUT.shapes]
    add_scaled_direction_(zero, LAYOUT, seed=3, coeff=1.0, spec=DirectionSpec())
    expected = direction(3, LAYOUT, DirectionSpec())
    assert all(torch.equal(x, z) for x, z in zip(zero, expected, strict=True))


def test_float64_params_are_supported() -> None:
    params = [p.to(torch.float64) for p in _params()]
    apply_updates_(params, LAYOUT, _updates(5), LOWRANK3)
    assert all(p.dtype == torch.float64 for p in params)


def test_invalid_updates_are_rejected() -> None:
    params = _params()
    with pytest.raises(ConsensusError):
        apply_updates_(params, LAYOUT, [Update(seed=1, coeff=math.nan)], DirectionSpec())
    for block in (3, -1):  # past the last tensor, and negative (never silently ignored)
        with pytest.raises(ConfigError):
            apply_updates_(params, LAYOUT, [Update(seed=1, coeff=1.0, block=block)],
                           DirectionSpec())
    with pytest.raises(ConsensusError):
        apply_updates_(params, LAYOUT, [Update(seed=1, coeff=math.inf, block=0)], LOWRANK3)
    with pytest.raises(ConfigError):
        apply_updates_(params[:2], LAYOUT, [], DirectionSpec())
    assert all(torch.equal(p, q) for p, q in zip(params, _params(), strict=True))


def test_model_hash_covers_names_dtypes_shapes_values_and_order() -> None:
    named = list(zip(LAYOUT.names, _params(), strict=True))
    digest = model_hash(named)
    assert len(digest) == 32 and model_hash(named) == digest
    renamed = [("W", named[0][1]), *named[1:]]
    retyped = [(named[0][0], named[0][1].double()), *named[1:]]
    reshaped = [(named[0][0], named[0][1].reshape(12, 16)), *named[1:]]
    bumped = [(named[0][0], named[0][1].clone()), *named[1:]]
    bumped[0][1].view(-1)[7] = torch.nextafter(bumped[0][1].view(-1)[7], torch.tensor(9.0))
    variants = [renamed, retyped, reshaped, bumped, named[::-1], named[:2]]
    assert len({digest, *(model_hash(v) for v in variants)}) == len(variants) + 1


def test_model_hash_known_answer() -> None:
    named = [
        ("a", torch.arange(6, dtype=torch.float32).reshape(2, 3)),
        ("b", torch.tensor([1, -2], dtype=torch.int64)),
        ("c", torch.tensor([0.5], dtype=torch.bfloat16)),
    ]
    # Serialized by hand from the format in protocol/model_hash.py's docstring.
    h = hashlib.sha256(b"seedswarm/model-hash/v1\0" + struct.pack("<Q", 3))
    h.update(b"\1\0\0\0a\7\0\0\0float32" + struct.pack("<IQQQ", 2, 2, 3, 24))
    h.update(struct.pack("<6f", *range(6)))
    h.update(b"\1\0\0\0b\5\0\0\0int64" + struct.pack("<IQQ", 1, 2, 16) + struct.pack("<2q", 1, -2))
    h.update(b"\1\0\0\0c\x08\0\0\0bfloat16" + struct.pack("<IQQ", 1, 1, 2) + b"\x00\x3f")
    assert model_hash(named) == h.digest()
    assert model_hash(named).hex() == (
        "edbdc200033b61d40a043ec7ca8d24056e6d3c4b323ea3ab1550bbd7e7339aa5"
    )


def _term_by_term(param: torch.Tensor, t: int, shape: tuple[int, ...], updates: list[Update],
                  spec: DirectionSpec) -> torch.Tensor:
    expected = param.clone()
    for u in updates:
        z = tensor_direction(u.seed, t, shape, spec)
        expected += z * torch.tensor(u.coeff, dtype=torch.float64).to(torch.float32)
    return expected


@pytest.mark.parametrize("shape", [(0, 3), (2**18 + 3,)], ids=["empty", "above-one-batch"])
def test_dense_apply_of_empty_and_large_tensors(shape: tuple[int, ...]) -> None:
    # the batching of directions adapts to the tensor's size without changing a number
    layout = ParamLayout(names=("x",), shapes=(shape,))
    updates = [Update(seed=7, coeff=1e-3), Update(seed=8, coeff=-2e-3)]
    params = [torch.zeros(shape)]
    expected = _term_by_term(params[0], 0, shape, updates, DirectionSpec())
    apply_updates_(params, layout, updates, DirectionSpec())
    assert torch.equal(params[0], expected)


def test_lowrank_apply_of_a_rank_above_the_matmul_batch() -> None:
    # rank 2048 > 1024 rank-one terms per matmul: one update per product
    layout = ParamLayout(names=("m",), shapes=((3, 2),))
    spec = DirectionSpec(DirectionKind.LOWRANK, rank=2048)
    params = [torch.zeros(3, 2, dtype=torch.float64)]
    apply_updates_(params, layout, [Update(seed=5, coeff=0.5), Update(seed=6, coeff=-0.25)], spec)
    exact = torch.zeros(3, 2, dtype=torch.float64)
    for u in (Update(seed=5, coeff=0.5), Update(seed=6, coeff=-0.25)):
        left, right = lowrank_factors(u.seed, 0, (3, 2), 2048)
        exact += (u.coeff / math.sqrt(2048)) * left.double().t().matmul(right.double())
    assert torch.allclose(params[0], exact, rtol=0.0, atol=1e-12)  # the 40-bit grid
    assert exact.abs().min() > 0.01
