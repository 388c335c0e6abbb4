"""The canonical counter-based random generator (a consensus rule).

Every node regenerates the same random numbers from a 64-bit key, bit for bit, on any CPU,
thread count or process. Nothing here uses torch's generators (CPU and CUDA streams differ) or
transcendental functions at generation time (their SIMD versions differ between CPUs).
Directions are always generated on the CPU and then moved to the parameters' device.

Word stream
    ``word(key, j) = fmix64(key + (j + 1) * 0x9E3779B97F4A7C15  mod 2**64)`` for j = 0, 1, ...
    where ``fmix64`` is the SplitMix64 finalizer (xor-shift 30, multiply 0xBF58476D1CE4E5B9,
    xor-shift 27, multiply 0x94D049BB133111EB, xor-shift 31; all modulo 2**64). This is the
    SplitMix64 output sequence whose state starts at ``key``. It is computed with numpy uint64
    arrays (C unsigned arithmetic: wraps modulo 2**64, logical shifts) in cache-sized chunks on
    one thread: torch's int64 ops would need masks for logical shifts and open one OpenMP
    parallel region per op, which collapses when the CPU is oversubscribed.

Gaussian (``canonical_gaussian``)
    Word j gives elements 4j .. 4j+3: element 4j+q is ``TABLE[(word >> 16q) & 0xFFFF]``.
    ``TABLE[i]`` is the midpoint normal quantile ``Phi^-1((i + 0.5) / 65536)``, made exactly
    antisymmetric (``TABLE[65535 - i] = -TABLE[i]``), multiplied by ``1/sqrt(mean of squares)``
    in float64 so that its variance is 1, then rounded to float32. Properties of the resulting
    distribution: 65,536 equiprobable levels; mean exactly 0 (symmetric); variance 1 to within
    float32 rounding (|var - 1| < 1e-9); truncated at +-4.3250 (the extreme levels; a true
    normal exceeds that with probability 1.5e-5); kurtosis 2.9992 (a normal has 3). The table is
    built at first use with ``statistics.NormalDist`` and checked against a hard-coded SHA-256,
    so a platform whose libm rounds differently fails loudly (ConsensusError) instead of forking.

Rademacher (``canonical_rademacher``)
    Word j gives elements 64j .. 64j+63: element 64j+m is ``-1`` if bit m of the word is set,
    else ``+1``.

Lanes and bits are defined arithmetically (lane q = bits 16q..16q+15, low first), so the
numbers do not depend on the machine's byte order (arrays are viewed as little-endian).

On first use a known-answer self-test of the integer hash runs (ConsensusError on mismatch).
"""

from __future__ import annotations

import functools
import hashlib
import math
import statistics
import sys
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import torch

from protocol.errors import ConsensusError

MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
FMIX_MUL1 = 0xBF58476D1CE4E5B9
FMIX_MUL2 = 0x94D049BB133111EB

TABLE_SIZE = 1 << 16
TABLE_SHA256 = "8babbcaf96568f10165a1eab530c0e5c92d04de96761b6dbb3dadfa94baba37f"
# Known answer: SHA-256 of the little-endian int64 bytes of the first 77 words of key 12345.
WORDS_SHA256 = "5069b1940c2e50e2c9d075215b3754187d8c148b24070f750226c3461406ab95"

# Words per chunk: the temporaries (2 x 256 KiB) stay in the L2 cache.
_CHUNK_WORDS = 1 << 15

Words = npt.NDArray[np.uint64]
Floats = npt.NDArray[np.float32]
GAUSSIAN_PER_WORD = 4
RADEMACHER_PER_WORD = 64
_SIGNS = np.array([1.0, -1.0], dtype=np.float32)  # bit clear -> +1, bit set -> -1


def fmix64(value: int) -> int:
    """SplitMix64 finalizer on a Python int (the exact reference)."""
    z = value & MASK64
    z = ((z ^ (z >> 30)) * FMIX_MUL1) & MASK64
    z = ((z ^ (z >> 27)) * FMIX_MUL2) & MASK64
    return z ^ (z >> 31)


def reference_words(key: int, count: int) -> list[int]:
    """The first ``count`` words of the stream of ``key`` as unsigned ints (slow reference)."""
    return [fmix64(key + (j + 1) * GOLDEN_GAMMA) for j in range(count)]


def _fmix64_(x: Words, tmp: Words) -> None:
    """In-place SplitMix64 finalizer on a uint64 array; ``tmp`` is scratch of the same size."""
    for shift, mul in ((30, FMIX_MUL1), (27, FMIX_MUL2), (31, 0)):
        np.right_shift(x, np.uint64(shift), out=tmp)
        np.bitwise_xor(x, tmp, out=x)
        if mul:
            np.multiply(x, np.uint64(mul), out=x)


def _fill_words(keys: Words, start: int, out: Words, tmp: Words) -> None:
    """Row k of ``out`` (rows x w) gets words ``start .. start+w-1`` of the stream of keys[k]."""
    w = out.shape[1]
    counters = np.arange(start + 1, start + w + 1, dtype=np.uint64)
    np.multiply(counters, np.uint64(GOLDEN_GAMMA), out=counters)
    np.add(counters[np.newaxis, :], keys[:, np.newaxis], out=out)
    _fmix64_(out, tmp)


def words(key: int, count: int) -> Words:
    """The first ``count`` words of the stream of ``key`` (uint64 array)."""
    _check_hash_once()
    return _words_unchecked(key, count)


def _words_unchecked(key: int, count: int) -> Words:
    out = np.empty((1, count), dtype=np.uint64)
    keys = np.array([key & MASK64], dtype=np.uint64)
    for start in range(0, count, _CHUNK_WORDS):
        chunk = out[:, start : start + _CHUNK_WORDS]
        _fill_words(keys, start, chunk, np.empty_like(chunk))
    row: Words = out[0]
    return row


def _le(x: Words) -> Words:
    """The same words stored little-endian, so that narrower views list low lanes first."""
    return x.astype("<u8", copy=False)


def _table_float64() -> list[float]:
    """Midpoint normal quantiles, antisymmetric, rescaled to unit variance (float64)."""
    dist = statistics.NormalDist()
    half = [dist.inv_cdf((i + 0.5) / TABLE_SIZE) for i in range(TABLE_SIZE // 2)]
    values = half + [-v for v in reversed(half)]
    scale = 1.0 / math.sqrt(math.fsum(v * v for v in values) / TABLE_SIZE)
    return [v * scale for v in values]


@functools.lru_cache(maxsize=1)
def normal_table() -> torch.Tensor:
    """The 65,536-entry float32 quantile table, verified against its hard-coded SHA-256."""
    table = torch.tensor(_table_float64(), dtype=torch.float64).to(torch.float32)
    digest = hashlib.sha256(tensor_le_bytes(table)).hexdigest()
    if digest != TABLE_SHA256:
        raise ConsensusError(
            "the normal quantile table differs from the canonical one on this platform "
            f"(sha256 {digest}); generating directions here would fork the network"
        )
    return table


def tensor_le_bytes(t: torch.Tensor) -> bytes:
    """Little-endian contiguous bytes of a CPU tensor."""
    flat = t.detach().to("cpu").contiguous().reshape(-1)
    if flat.element_size() > 1 and sys.byteorder != "little":  # pragma: no cover
        raw = flat.view(torch.uint8).reshape(-1, flat.element_size()).flip(1)
        return bytes(raw.contiguous().numpy().tobytes())
    return bytes(flat.view(torch.uint8).numpy().tobytes())


@functools.lru_cache(maxsize=1)
def _check_hash_once() -> None:
    raw = _le(_words_unchecked(12345, 77)).tobytes()
    got = hashlib.sha256(raw).hexdigest()
    if got != WORDS_SHA256:
        raise ConsensusError(f"the uint64 hash stream differs on this platform (sha256 {got})")


def canonical_gaussian(key: int, n: int) -> torch.Tensor:
    """``n`` float32 unit-variance normal-quantile samples of the stream of ``key`` (CPU)."""
    return gaussian_rows([key], n)[0]


def canonical_rademacher(key: int, n: int) -> torch.Tensor:
    """``n`` float32 +-1 values from the bits of the stream of ``key`` (CPU)."""
    return rademacher_rows([key], n)[0]


def gaussian_rows(keys: Sequence[int] | Words, n: int) -> torch.Tensor:
    """Row k is ``canonical_gaussian(keys[k], n)``; one batched pass for many short streams."""
    return _generate(keys, n, GAUSSIAN_PER_WORD, _fill_gaussian_rows)


def rademacher_rows(keys: Sequence[int] | Words, n: int) -> torch.Tensor:
    """Row k is ``canonical_rademacher(keys[k], n)``; one batched pass for many short streams."""
    return _generate(keys, n, RADEMACHER_PER_WORD, _fill_rademacher_rows)


def _fill_gaussian_rows(keys: Words, out: Floats) -> None:
    """Row k of ``out`` (rows x n, n a multiple of 4, any strides) gets the first n numbers of
    ``canonical_gaussian(keys[k], .)``, written in place without an intermediate copy."""
    _fill_rows(keys, out, GAUSSIAN_PER_WORD, gaussian_from_words)


def _fill_rademacher_rows(keys: Words, out: Floats) -> None:
    """Row k of ``out`` (rows x n, n a multiple of 64) gets ``canonical_rademacher(keys[k], n)``."""
    _fill_rows(keys, out, RADEMACHER_PER_WORD, rademacher_from_words)


def stream_words_(x: Words, tmp: Words) -> None:
    """In place: an element holding ``key + (j + 1) * GOLDEN_GAMMA`` (mod 2**64) becomes word j
    of the stream of ``key``. ``tmp`` is scratch of the same shape."""
    _check_hash_once()
    _fmix64_(x, tmp)


def gaussian_from_words(x: Words, out: Floats) -> None:
    """The Gaussian numbers of a (rows x w) block of words into ``out`` (rows x 4w)."""
    np.take(normal_table().numpy(), _le(x).view("<u2"), out=out, mode="clip")  # < 65536


def rademacher_from_words(x: Words, out: Floats) -> None:
    """The +-1 numbers of a (rows x w) block of words into ``out`` (rows x 64w)."""
    bits = np.unpackbits(_le(x).view(np.uint8), axis=-1, bitorder="little")
    np.take(_SIGNS, bits, out=out, mode="clip")  # bits are 0 or 1


def key_array(keys: Sequence[int] | Words) -> Words:
    """Keys as a uint64 array (Python ints are reduced modulo 2**64)."""
    if isinstance(keys, np.ndarray):
        return keys.astype(np.uint64, copy=False)
    return np.array([k & MASK64 for k in keys], dtype=np.uint64)


def _generate(
    keys: Sequence[int] | Words,
    n: int,
    per_word: int,
    fill: Callable[[Words, Floats], None],
) -> torch.Tensor:
    """(len(keys), n) float32 through ``fill`` on a buffer padded to whole words."""
    rows = len(keys)
    count = -(-n // per_word)  # words per row
    out = np.empty((rows, count * per_word), dtype=np.float32)
    fill(key_array(keys), out)
    return torch.from_numpy(out)[:, :n]


def _fill_rows(
    keys: Words, out: Floats, per_word: int, emit: Callable[[Words, Floats], None]
) -> None:
    """Fill ``out`` in cache-sized blocks; ``emit`` turns a (rows x w) block of words into its
    numbers. Whole rows are batched when they fit in a block, else a row is cut into blocks."""
    _check_hash_once()
    rows, width = out.shape
    if width % per_word or rows != len(keys):
        raise ValueError(f"{rows} keys and {width} columns (a multiple of {per_word}) expected")
    count = width // per_word  # words per row
    if not rows or not count:
        return
    rows_per_block = max(1, _CHUNK_WORDS // count)
    step = count if rows_per_block > 1 else _CHUNK_WORDS  # words per row and block
    block_rows = min(rows_per_block, rows)
    x_buf = np.empty(block_rows * min(step, count), dtype=np.uint64)
    tmp_buf = np.empty_like(x_buf)
    for r0 in range(0, rows, rows_per_block):
        r1 = min(rows, r0 + rows_per_block)
        for start in range(0, count, step):
            w = min(step, count - start)
            x = x_buf[: (r1 - r0) * w].reshape(r1 - r0, w)
            _fill_words(keys[r0:r1], start, x, tmp_buf[: (r1 - r0) * w].reshape(r1 - r0, w))
            emit(x, out[r0:r1, start * per_word : (start + w) * per_word])


def fmix64_array(x: Words) -> Words:
    """The SplitMix64 finalizer on every element of a uint64 array (a new array)."""
    out = x.astype(np.uint64, copy=True)
    _fmix64_(out, np.empty_like(out))
    return out
