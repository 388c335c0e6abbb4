"""Known answers: the apply arithmetic (update coefficients, dense and exact low-rank
accumulation, rounding to the parameter's dtype) and the model hash.

A certificate names the model hash that results from applying its contributions, so every
replica must reach the same bits. Computed once and written down. Tensors are compared as the
hex of their little-endian bytes (serialized here with numpy, not with the code under test).

The outer optimizer's state (the learning issue) has no vector yet: it gets one here when that
feature lands.
"""

from __future__ import annotations

import pytest
import torch

from protocol.apply import apply_updates_, lowrank_grid
from protocol.codecs import contribution_updates
from protocol.errors import ConfigError
from protocol.layout import ParamLayout
from protocol.model_hash import model_hash
from protocol.perturb import DirectionKind, DirectionSpec, Update

LAYOUT = ParamLayout(names=("w", "b"), shapes=((2, 3), (4,)))
# Four terms: the whole vector, tensor 0 only, tensor 1 only, the whole vector again; seeds at
# both ends of the accepted range.
UPDATES = [Update(11, 1e-3), Update(2**63 + 5, -2.5e-4, 0), Update(7, 3.3e-3, 1),
           Update(2**64 - 1, 1 / 3)]


def le_hex(t: torch.Tensor) -> str:
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    array = t.detach().contiguous().numpy()
    return array.astype(array.dtype.newbyteorder("<")).tobytes().hex()


def params(dtypes: tuple[torch.dtype, torch.dtype] = (torch.float32, torch.float32)
           ) -> list[torch.Tensor]:
    return [torch.tensor([[0.5, -0.25, 1.0], [2.0, -1.5, 0.125]], dtype=dtypes[0]),
            torch.tensor([0.0, 1.0, -1.0, 3.0], dtype=dtypes[1])]


@pytest.mark.parametrize(("kind", "rank", "expected"), [
    # dense: tmp = z * c32, p += tmp, term by term in order
    (DirectionKind.GAUSSIAN, 1,
     ["581e0c3f0b9c603ee685bc3fd0be0640420fc4bf0e0e553e", "15a2003f625e413fd690a2bfb2d94140"]),
    (DirectionKind.RADEMACHER, 1,
     ["7c86553f6a0315bfa1d3aa3fda401540c13c95bff21956be", "0f77a8be4d5faa3fc41daabfc89b5540"]),
    # low-rank: one exact fixed-point sum on the matrix, rounded once; dense on the vector
    (DirectionKind.LOWRANK, 2,
     ["8345003ff4e97ebebd79bc3fad7ac33f5cd783bf8b1afd3d", "15a2003f625e413fd690a2bfb2d94140"]),
    (DirectionKind.LOWRANK, 1,
     ["466f2b3ee033ac3d3ec3aa3fc23cd53fe96d95bf5d48ea3e", "15a2003f625e413fd690a2bfb2d94140"]),
])
def test_apply_float32(kind: DirectionKind, rank: int, expected: list[str]) -> None:
    p = params()
    apply_updates_(p, LAYOUT, UPDATES, DirectionSpec(kind, rank))
    assert [le_hex(t) for t in p] == expected


@pytest.mark.parametrize(("kind", "rank", "expected"), [
    (DirectionKind.GAUSSIAN, 1, ["0c3f613ebd3f0740c4bf553e",
                                 "cdcccca44214e03ff64d8735cc2be83ffe1ecfbe1a52f4bf9a779c45363b0840"]),
    (DirectionKind.LOWRANK, 3, ["9e3e68bd993fe73fa8bfa23e",
                                "cdcccca44214e03ff64d8735cc2be83ffe1ecfbe1a52f4bf9a779c45363b0840"]),
])
def test_apply_bfloat16_and_float64(kind: DirectionKind, rank: int, expected: list[str]) -> None:
    # the coefficient and the sum are rounded to each parameter's own dtype
    p = params((torch.bfloat16, torch.float64))
    apply_updates_(p, LAYOUT, UPDATES, DirectionSpec(kind, rank))
    assert [le_hex(t) for t in p] == expected


def test_lowrank_grid() -> None:
    # (q_k, s) with c_k ~= q_k * 2**-s: 40 bits below 4096 terms, fewer above, zero stays zero
    assert lowrank_grid([1e-3, -2.5e-4, 1 / 3, 0.0], 8) == (
        [2199023256, -549755814, 733007751851, 0], 41)
    assert lowrank_grid([1.0, -3.0e-12, 2**-30], 5000) == ([274877906944, -1, 256], 38)
    assert lowrank_grid([0.0, -0.0], 2) == ([0, 0], 0)
    assert lowrank_grid([], 0) == ([], 0)
    # 2**44 rank-one terms leave 8 bits, the fewest allowed; one more term is refused
    assert lowrank_grid([1.0], 2**44) == ([128], 7)
    with pytest.raises(ConfigError):
        lowrank_grid([1.0], 2**44 + 1)


def test_apply_more_than_4096_rank_one_terms() -> None:
    # 2100 updates of rank 2 (4200 terms: a 39-bit grid) on a float64 matrix, one large and
    # 2099 tiny coefficients: the grid's resolution shows in the last bits
    layout = ParamLayout(names=("m",), shapes=((2, 2),))
    updates = [Update(1000 + k, 1.0 if k == 0 else 3e-12 * k) for k in range(2100)]
    p = [torch.zeros((2, 2), dtype=torch.float64)]
    apply_updates_(p, layout, updates, DirectionSpec(DirectionKind.LOWRANK, 2))
    assert le_hex(p[0]) == ("0040a9229ea0f63f00c0543f9ea0f6bf004069a69ea0f63f00403a9a9ea0f6bf")


def signed_zeros() -> list[torch.Tensor]:
    return [torch.tensor([[-0.0, 0.0, -0.0], [1.0, -0.0, 0.0]]),
            torch.tensor([-0.0, -0.0, 0.0, -0.0])]


@pytest.mark.parametrize(("kind", "rank", "expected"), [
    # dense: p + z * 0 is +0.0 where z is positive (-0.0 + 0.0), -0.0 where it is negative
    (DirectionKind.GAUSSIAN, 1, ["0000000000000000000000000000803f0000008000000000",
                                 "00000000000000000000000000000080"]),
    # low-rank: coefficients that are all zero on the grid leave the matrix untouched
    (DirectionKind.LOWRANK, 2, ["0000008000000000000000800000803f0000008000000000",
                                "00000000000000000000000000000080"]),
])
def test_zero_coefficients_and_signed_zeros(kind: DirectionKind, rank: int,
                                            expected: list[str]) -> None:
    p = signed_zeros()
    apply_updates_(p, LAYOUT, [Update(11, 0.0), Update(12, -0.0)], DirectionSpec(kind, rank))
    assert [le_hex(t) for t in p] == expected


def test_a_zero_coefficient_among_others() -> None:
    # low-rank: the zero term drops out of the exact sum, the others are applied
    p = signed_zeros()
    updates = [Update(11, 1e-3), Update(12, 0.0, 0), Update(13, -2e-3, 0)]
    apply_updates_(p, LAYOUT, updates, DirectionSpec(DirectionKind.LOWRANK, 2))
    assert [le_hex(t) for t in p] == ["225db93a225db93a225db93a572e803fd9058bbb225db93a",
                                      "112c783a22874d3a67de98398e77deba"]


def test_contribution_coefficients() -> None:
    # ((-lr) * w) * g / K for ZO, ((-lr) * w) * gamma on its block for FO; lr 1e-3, w 0.25
    zo = contribution_updates("zo", [1, 2, 3], [0.5, -1.25, 3e-3], [], 1e-3, 0.25)
    assert [(u.seed, u.coeff.hex(), u.block) for u in zo] == [
        (1, "-0x1.5d867c3ece2a5p-15", None), (2, "0x1.b4e81b4e81b4fp-14", None),
        (3, "-0x1.0c6f7a0b5ed8dp-22", None)]
    fo = contribution_updates("fo", [1, 2, 3], [0.5, -1.25, 3e-3], [2, 0, 1], 1e-3, 0.25)
    assert [(u.seed, u.coeff.hex(), u.block) for u in fo] == [
        (1, "-0x1.0624dd2f1a9fcp-13", 0), (2, "0x1.47ae147ae147bp-12", 0),
        (3, "-0x1.92a737110e454p-21", 2)]


def test_model_hash() -> None:
    # names, dtypes, shapes and little-endian bytes, in order: float32, bfloat16, a 0-d int64,
    # an empty tensor
    named = [
        ("w", torch.tensor([[0.5, -0.25, 1.0], [2.0, -1.5, 0.125]])),
        ("b", torch.tensor([0.0, 1.0, -1.0, 3.0], dtype=torch.bfloat16)),
        ("step", torch.tensor(7, dtype=torch.int64)),
        ("empty", torch.zeros((0, 3))),
    ]
    assert model_hash(named).hex() == (
        "86fac1be3e6797f409dbac1e186ca21ace82e9bf87653df9e45774ae31f27cd6")
    # no tensor at all: the domain tag and a zero count
    assert model_hash([]).hex() == (
        "af970ee5a27965e1f1394c7b22d09c01458881bef2367bda8d4581ba5b28f85b")
