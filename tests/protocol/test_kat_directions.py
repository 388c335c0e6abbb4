"""Known answers: the canonical generator and the random directions (dense and low-rank).

Every replica regenerates z(seed) bit for bit; a different number anywhere here is a different
update on every model. Computed once and written down. Tensors are compared as the hex of their
little-endian bytes (serialized here with numpy, not with the code under test).
"""

from __future__ import annotations

import pytest
import torch

from protocol.gaussian import (
    TABLE_SHA256,
    WORDS_SHA256,
    canonical_gaussian,
    canonical_rademacher,
    normal_table,
    reference_words,
    words,
)
from protocol.layout import ParamLayout
from protocol.messages import DIRECTIONS as WIRE_DIRECTIONS
from protocol.perturb import (
    DirectionKind,
    DirectionSpec,
    dense_rows,
    direction,
    lowrank_factor_rows,
    lowrank_factors,
    tensor_key,
)

LAYOUT = ParamLayout(names=("w", "b"), shapes=((2, 3), (4,)))


def le_hex(t: torch.Tensor) -> str:
    array = t.detach().contiguous().numpy()
    return array.astype(array.dtype.newbyteorder("<")).tobytes().hex()


def test_word_stream() -> None:
    # SplitMix64 from state 0 (the published first output) and from state 2**64 - 1
    assert [hex(w) for w in reference_words(0, 2)] == ["0xe220a8397b1dcdaf", "0x6e789e6aa1b965f4"]
    assert [hex(int(w)) for w in words(2**64 - 1, 2)] == ["0xe4d971771b652c20",
                                                          "0xe99ff867dbf682c9"]


def test_self_test_constants() -> None:
    # the digests the module checks itself against at first use
    assert TABLE_SHA256 == "8babbcaf96568f10165a1eab530c0e5c92d04de96761b6dbb3dadfa94baba37f"
    assert WORDS_SHA256 == "5069b1940c2e50e2c9d075215b3754187d8c148b24070f750226c3461406ab95"


def test_normal_table() -> None:
    # the ends and the middle of the 65,536 float32 quantile levels (antisymmetric)
    table = normal_table()
    assert {i: float(table[i]).hex() for i in (0, 1, 32767, 32768, 65534, 65535)} == {
        0: "-0x1.14cc320000000p+2",
        1: "-0x1.04e13e0000000p+2",
        32767: "-0x1.40da080000000p-16",
        32768: "0x1.40da080000000p-16",
        65534: "0x1.04e13e0000000p+2",
        65535: "0x1.14cc320000000p+2",
    }


def test_canonical_gaussian_across_a_word_boundary() -> None:
    # nine numbers of key 0xDEADBEEF: lanes 0-3 of words 0 and 1, lane 0 of word 2
    assert [float(x).hex() for x in canonical_gaussian(0xDEADBEEF, 9)] == [
        "0x1.684a7c0000000p+0", "-0x1.d593540000000p-3", "0x1.2ed4320000000p-1",
        "-0x1.17a4f80000000p-1", "-0x1.cd9c260000000p+0", "-0x1.4f25640000000p-1",
        "-0x1.b8aba00000000p-3", "0x1.1e98b60000000p+0", "0x1.152fb00000000p+1",
    ]


def test_canonical_rademacher_across_a_word_boundary() -> None:
    # seventy signs of key 0xDEADBEEF: bits 0-63 of word 0, bits 0-5 of word 1 (set bit: -1)
    signs = "".join("+" if x > 0 else "-" for x in canonical_rademacher(0xDEADBEEF, 70))
    assert signs == "--+--++---+-+----++-++--+++-+--+----++++-++---+------+--+-+-++-++-+++-"


@pytest.mark.parametrize(("seed", "tensor", "stream", "key"), [
    (0, 0, 0, 0x45F53BA19FD8D8CF),  # stream 0: Gaussian
    (0, 0, 1, 0x0BDE971967D3A727),  # stream 1: Rademacher
    (0, 0, 2, 0xDB9F13EA5B0400BB),  # stream 2: low-rank U
    (0, 0, 3, 0xB0DB96803894E32D),  # stream 3: low-rank V
    (1, 0, 0, 0x1CCF5B6669E62FD6),
    (0, 1, 0, 0x1FF9FD993EB4F973),
    (2**63 - 1, 5, 0, 0x680114458BEAA23B),  # the largest seed derive_seed gives
    (2**63, 5, 0, 0xDF17422ADD7E052A),
    (2**64 - 1, 2, 3, 0x9F94E8F58AFCD080),  # the largest seed a direction accepts
])
def test_tensor_key(seed: int, tensor: int, stream: int, key: int) -> None:
    assert tensor_key(seed, tensor, stream) == key


# (kind, rank, seed) -> the direction on a 2x3 and a 4-element tensor
DIRECTIONS = [
    (DirectionKind.GAUSSIAN, 1, 12345,
     ["82add7bfcd0f913fd883b33f7130e3be14e18f3e5a60dc3f", "e70fd3bfb078de3dcdd8563eeeddb83f"]),
    (DirectionKind.GAUSSIAN, 1, 2**64 - 1,
     ["2cd6133ee1bcb33ffcafb53f630da33e2d34c2bd95e37d3e", "7f80bd3fd2df3abf99944dbfd218d53d"]),
    (DirectionKind.RADEMACHER, 1, 12345,
     ["000080bf000080bf0000803f000080bf000080bf0000803f", "0000803f0000803f0000803f000080bf"]),
    (DirectionKind.RADEMACHER, 1, 2**64 - 1,
     ["0000803f000080bf0000803f0000803f0000803f000080bf", "000080bf0000803f000080bf0000803f"]),
    # low-rank: (u1 v1^T + u2 v2^T) / sqrt(2) on the matrix, Gaussian on the vector
    (DirectionKind.LOWRANK, 2, 12345,
     ["00000000f304b53f0000000000000000f304b53f00000000", "e70fd3bfb078de3dcdd8563eeeddb83f"]),
    (DirectionKind.LOWRANK, 2, 2**64 - 1,
     ["0000000000000000f304b53ff304b5bff304b53f00000000", "7f80bd3fd2df3abf99944dbfd218d53d"]),
]


@pytest.mark.parametrize(("kind", "rank", "seed", "tensors"), DIRECTIONS)
def test_direction(kind: DirectionKind, rank: int, seed: int, tensors: list[str]) -> None:
    z = direction(seed, LAYOUT, DirectionSpec(kind, rank))
    assert [le_hex(t) for t in z] == tensors
    # a block is exactly the same numbers as the full direction restricted to it
    assert le_hex(direction(seed, LAYOUT, DirectionSpec(kind, rank), blocks=[1])[0]) == tensors[1]


def test_lowrank_factors() -> None:
    # the +-1 factors of seed 12345 on tensor 0 (2x3), rank 2: U is 2x2, V is 2x3
    u, v = lowrank_factors(12345, 0, (2, 3), 2)
    assert u.tolist() == [[1.0, 1.0], [-1.0, -1.0]]
    assert v.tolist() == [[-1.0, 1.0, -1.0], [-1.0, -1.0, -1.0]]
    assert u.dtype == v.dtype == torch.float32


def test_direction_vocabulary() -> None:
    # the names in network configurations, and the order of the wire's enum (messages.DIRECTIONS)
    assert [(k.name, k.value) for k in DirectionKind] == [
        ("GAUSSIAN", "gaussian"), ("RADEMACHER", "rademacher"), ("LOWRANK", "lowrank")]
    assert tuple(k.value for k in DirectionKind) == WIRE_DIRECTIONS
    assert DirectionSpec() == DirectionSpec(DirectionKind.GAUSSIAN, 1)


def test_batched_rows_are_the_same_numbers() -> None:
    # row k of the batched generators is the direction of seeds[k] on tensor 1 (4 elements)
    seeds = [12345, 2**64 - 1]
    gaussian = dense_rows(seeds, 1, 4, DirectionSpec(DirectionKind.GAUSSIAN))
    assert [le_hex(r) for r in gaussian] == ["e70fd3bfb078de3dcdd8563eeeddb83f",
                                             "7f80bd3fd2df3abf99944dbfd218d53d"]
    rademacher = dense_rows(seeds, 1, 4, DirectionSpec(DirectionKind.RADEMACHER))
    assert [le_hex(r) for r in rademacher] == ["0000803f0000803f0000803f000080bf",
                                               "000080bf0000803f000080bf0000803f"]
    # low-rank factors of both seeds on tensor 0 (2x3), rank 2, stacked seed by seed
    u, v = lowrank_factor_rows(seeds, 0, (2, 3), 2)
    assert u.tolist() == [[1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0], [1.0, -1.0]]
    assert v.tolist() == [[-1.0, 1.0, -1.0], [-1.0, -1.0, -1.0], [1.0, -1.0, -1.0],
                          [1.0, -1.0, 1.0]]
