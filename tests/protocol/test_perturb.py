"""The canonical generator and directions: known answers, distribution, structure."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch

import protocol.gaussian as gaussian
from protocol.errors import ConfigError, ConsensusError
from protocol.gaussian import (
    canonical_gaussian,
    canonical_rademacher,
    gaussian_rows,
    normal_table,
    rademacher_rows,
    reference_words,
    tensor_le_bytes,
    words,
)
from protocol.layout import ParamLayout
from protocol.perturb import (
    DenseSlab,
    DirectionKind,
    DirectionSpec,
    dense_rows,
    direction,
    seed_keys,
    tensor_key,
    tensor_keys,
)

# Known answers, computed once and frozen: a machine that disagrees would fork the network.
# The SplitMix64 stream of state 0 starts with 0xE220A8397B1DCDAF (the published value).
GOLDEN_WORDS_KEY7 = [0x63CBE1E459320DD7, 0x044C3CD7F43C661C, 0xE6984080BAB12A02]
GOLDEN_TENSOR_KEY = 0xA74746BA0BAC383A  # tensor_key(seed=42, tensor_index=3, stream=0)
GOLDEN_GAUSSIAN_SHA = "d4344aa553370043"  # first 16 hex of sha256(canonical_gaussian(7, 1001))
GOLDEN_RADEMACHER_SHA = "66bb0203e7e2e6ef"  # first 16 hex of sha256(canonical_rademacher(7, 1001))
GOLDEN_GAUSSIAN_HEAD = [
    -1.6066304445266724,
    -0.38957518339157104,
    1.187045931816101,
    -0.2797808349132538,
]  # canonical_gaussian(7, 4)

LAYOUT = ParamLayout(names=("w", "b", "m"), shapes=((6, 5), (7,), (4, 3)))
ALL_SPECS = [
    DirectionSpec(DirectionKind.GAUSSIAN),
    DirectionSpec(DirectionKind.RADEMACHER),
    DirectionSpec(DirectionKind.LOWRANK, rank=1),
    DirectionSpec(DirectionKind.LOWRANK, rank=3),
]


def _sha16(t: torch.Tensor) -> str:
    return hashlib.sha256(tensor_le_bytes(t)).hexdigest()[:16]


def test_word_stream_matches_the_exact_integer_reference() -> None:
    for key in (0, 1, 7, 2**63 - 1, 2**64 - 1, 0xDEADBEEFCAFEBABE):
        got = [w & gaussian.MASK64 for w in words(key, 300).tolist()]
        assert got == reference_words(key, 300)


def test_word_stream_known_answer() -> None:
    assert reference_words(0, 1) == [0xE220A8397B1DCDAF]
    assert reference_words(7, 3) == GOLDEN_WORDS_KEY7
    assert [w & gaussian.MASK64 for w in words(7, 3).tolist()] == GOLDEN_WORDS_KEY7


def test_tensor_key_known_answer_and_separation() -> None:
    assert tensor_key(42, 3, 0) == GOLDEN_TENSOR_KEY
    keys = {tensor_key(s, t, k) for s in range(20) for t in range(20) for k in range(4)}
    assert len(keys) == 20 * 20 * 4
    with pytest.raises(ConfigError):
        tensor_key(-1, 0, 0)


def test_table_is_canonical_symmetric_and_unit_variance() -> None:
    table = normal_table().to(torch.float64)
    assert hashlib.sha256(tensor_le_bytes(normal_table())).hexdigest() == gaussian.TABLE_SHA256
    assert torch.equal(table, -table.flip(0))
    assert torch.all(table[1:] > table[:-1])
    assert abs(table.pow(2).mean().item() - 1.0) < 1e-9
    assert table.sum().item() == 0.0
    assert abs(table.max().item() - 4.325) < 1e-3
    assert abs(table.pow(4).mean().item() - 2.9992) < 1e-4


def test_table_mismatch_raises_consensus_error(monkeypatch: pytest.MonkeyPatch) -> None:
    normal_table.cache_clear()
    monkeypatch.setattr(gaussian, "TABLE_SHA256", "00" * 32)
    try:
        with pytest.raises(ConsensusError):
            normal_table()
    finally:
        normal_table.cache_clear()


def test_gaussian_and_rademacher_match_bit_level_definition() -> None:
    w = reference_words(99, 5)
    table = normal_table().tolist()
    expected_g = [table[(w[j // 4] >> (16 * (j % 4))) & 0xFFFF] for j in range(19)]
    assert canonical_gaussian(99, 19).tolist() == expected_g
    expected_r = [-1.0 if (w[j // 64] >> (j % 64)) & 1 else 1.0 for j in range(301)]
    assert canonical_rademacher(99, 301).tolist() == expected_r


def test_generator_known_answers() -> None:
    assert _sha16(canonical_gaussian(7, 1001)) == GOLDEN_GAUSSIAN_SHA
    assert _sha16(canonical_rademacher(7, 1001)) == GOLDEN_RADEMACHER_SHA
    assert canonical_gaussian(7, 4).tolist() == GOLDEN_GAUSSIAN_HEAD


def test_prefixes_rows_and_chunking_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [3, 2**64 - 5, 12]
    full_g, full_r = gaussian_rows(keys, 777), rademacher_rows(keys, 777)
    for i, key in enumerate(keys):
        assert torch.equal(full_g[i], canonical_gaussian(key, 777))
        assert torch.equal(full_r[i], canonical_rademacher(key, 777))
        assert torch.equal(canonical_gaussian(key, 100), full_g[i, :100])
    monkeypatch.setattr(gaussian, "_CHUNK_WORDS", 16)
    assert torch.equal(gaussian_rows(keys, 777), full_g)
    assert torch.equal(rademacher_rows(keys, 777), full_r)
    assert torch.equal(canonical_gaussian(keys[0], 777), full_g[0])


def test_gaussian_moments() -> None:
    n = 1 << 21
    z = canonical_gaussian(2024, n).to(torch.float64)
    mean, var = z.mean().item(), z.var().item()
    kurt = ((z - mean).pow(4).mean() / var**2).item()
    assert abs(mean) < 5 / math.sqrt(n)
    assert abs(var - 1) < 5 * math.sqrt(2 / n)
    assert abs(kurt - 3) < 5 * math.sqrt(24 / n) + 0.01  # the table's own kurtosis is 2.9992
    tail = (z.abs() > 2).double().mean().item()
    assert abs(tail - 0.0455) < 5 * math.sqrt(0.0455 / n)


def test_rademacher_is_balanced() -> None:
    n = 1 << 20
    z = canonical_rademacher(11, n)
    assert set(z.unique().tolist()) == {-1.0, 1.0}
    assert abs(z.sum().item()) < 5 * math.sqrt(n)


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: f"{s.kind.value}{s.rank}")
def test_blocks_give_the_same_numbers_as_the_full_direction(spec: DirectionSpec) -> None:
    full = direction(5, LAYOUT, spec)
    assert [tuple(z.shape) for z in full] == list(LAYOUT.shapes)
    assert all(z.dtype == torch.float32 for z in full)
    part = direction(5, LAYOUT, spec, blocks=[2, 0])
    assert torch.equal(part[0], full[2]) and torch.equal(part[1], full[0])
    assert not torch.equal(direction(6, LAYOUT, spec)[0], full[0])


def test_lowrank_structure() -> None:
    z = direction(9, LAYOUT, DirectionSpec(DirectionKind.LOWRANK, rank=2))
    assert int(torch.linalg.matrix_rank(z[0].double()).item()) <= 2
    assert torch.equal(z[1], direction(9, LAYOUT, DirectionSpec())[1])  # 1-D: dense Gaussian
    rank1 = direction(9, LAYOUT, DirectionSpec(DirectionKind.LOWRANK, rank=1))[0]
    assert set(rank1.unique().tolist()) == {-1.0, 1.0}


def test_bad_specs_and_blocks_are_rejected() -> None:
    with pytest.raises(ConfigError):
        DirectionSpec(DirectionKind.LOWRANK, rank=0)
    with pytest.raises(ConfigError):
        direction(1, LAYOUT, DirectionSpec(), blocks=[3])


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: f"{s.kind.value}{s.rank}")
def test_second_moment_is_identity(spec: DirectionSpec) -> None:
    layout = ParamLayout(names=("w", "b"), shapes=((4, 3), (3,)))
    samples = 3000
    zs = torch.stack(
        [torch.cat([t.reshape(-1) for t in direction(s, layout, spec)]) for s in range(samples)]
    ).to(torch.float64)
    second = zs.t().matmul(zs) / samples
    # Each entry averages products of unit-variance entries with fourth moment <= 3, so its
    # standard error is <= sqrt(3 / samples); 5 standard errors over 225 entries.
    tolerance = 5 * math.sqrt(3 / samples)
    assert (second - torch.eye(layout.numel, dtype=torch.float64)).abs().max() < tolerance
    assert zs.mean(0).abs().max() < 5 / math.sqrt(samples)


@pytest.mark.parametrize(("seed", "tensor", "stream"), [
    (2**64, 0, 0),  # would alias seed 0 modulo 2**64
    (-1, 0, 0), (0, -1, 0), (0, 0, -1),
    (True, 0, 0), (0, False, 0), (0, 0, True),  # booleans are not numbers here
    (1.0, 0, 0),
])
def test_tensor_key_refuses_what_is_not_a_u64_seed(seed: int, tensor: int, stream: int) -> None:
    with pytest.raises(ConfigError):
        tensor_key(seed, tensor, stream)


def test_tensor_key_errors_name_the_input_and_its_bound() -> None:
    with pytest.raises(ConfigError, match=r"^seed must be an integer in \[0, 2\*\*64\)"):
        tensor_key(2**64, 0, 0)
    with pytest.raises(ConfigError, match=r"^tensor index must be an integer >= 0"):
        tensor_key(0, -1, 0)
    with pytest.raises(ConfigError, match=r"^stream must be an integer >= 0"):
        tensor_key(0, 0, -1)


def test_tensor_key_accepts_every_u64_seed() -> None:
    assert tensor_key(2**64 - 1, 0, 0) != tensor_key(0, 0, 0)
    assert direction(2**64 - 1, LAYOUT, DirectionSpec())[0].shape == (6, 5)


def test_a_spec_needs_a_direction_kind_and_a_block_index_in_range() -> None:
    with pytest.raises(ConfigError, match="unknown direction kind"):
        DirectionSpec("gaussian")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="block -1 out of range for a layout of 3 tensors"):
        direction(1, LAYOUT, DirectionSpec(), blocks=[-1])


SEEDS = [0, 1, 42, 2**63 + 5, 2**64 - 1, 123_456_789]


def test_vectorized_keys_are_tensor_key() -> None:
    keys = seed_keys(SEEDS)
    assert keys.dtype == np.uint64
    for t, stream in [(0, 0), (3, 0), (1, 1), (7, 3)]:
        assert tensor_keys(keys, t, stream).tolist() == [tensor_key(s, t, stream) for s in SEEDS]
    assert seed_keys([]).shape == (0,)


@pytest.mark.parametrize("seed", [2**64, -1, True, 1.0])
def test_vectorized_keys_refuse_what_tensor_key_refuses(seed: int) -> None:
    with pytest.raises(ConfigError, match=r"^seed must be an integer in \[0, 2\*\*64\)"):
        seed_keys([5, seed])
    with pytest.raises(ConfigError, match=r"^tensor index must be an integer >= 0"):
        tensor_keys(seed_keys([5]), -1, 0)


@pytest.mark.parametrize("kind", [DirectionKind.GAUSSIAN, DirectionKind.RADEMACHER])
def test_dense_slab_rows_are_the_directions_side_by_side(kind: DirectionKind) -> None:
    spec = DirectionSpec(kind)
    tensors, numels = (4, 0, 2, 9), (130, 0, 64, 7)
    slab = DenseSlab(tensors, numels, spec)
    assert slab.offsets == (0, 192, 192, 256, 320) and slab.width == 320
    keys = slab.keys(seed_keys(SEEDS))
    whole = np.empty((len(SEEDS), slab.width), dtype=np.float32)
    slab.fill(keys, 0, slab.width, whole)
    for i, (t, numel) in enumerate(zip(tensors, numels, strict=True)):
        expected = dense_rows(SEEDS, t, numel, spec)
        got = torch.from_numpy(whole[:, slab.offsets[i] : slab.offsets[i] + numel])
        assert torch.equal(got, expected)
    # any block of whole words, for any subset of the seeds, is the same numbers
    for start, stop in [(0, 64), (64, 256), (128, 320), (192, 256)]:
        part = np.empty((2, stop - start), dtype=np.float32)
        slab.fill(keys[3:5], start, stop, part)
        assert np.array_equal(part, whole[3:5, start:stop])
    with pytest.raises(ConfigError, match="whole words"):
        slab.fill(keys, 4, 64, np.empty((len(SEEDS), 60), dtype=np.float32))


def test_many_short_rows_are_generated_in_row_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = list(range(50))
    g, r = gaussian_rows(keys, 37), rademacher_rows(keys, 130)
    monkeypatch.setattr(gaussian, "_CHUNK_WORDS", 64)  # 6 Gaussian rows per block, 9 blocks
    assert torch.equal(gaussian_rows(keys, 37), g)
    assert torch.equal(rademacher_rows(keys, 130), r)
    for k in (0, 13, 49):
        assert torch.equal(g[k], canonical_gaussian(k, 37))
        assert torch.equal(r[k], canonical_rademacher(k, 130))
