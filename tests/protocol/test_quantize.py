"""The one-byte quantizer: error bound, unbiasedness, reproducibility, format checks."""

from __future__ import annotations

import itertools
import math
import random
from decimal import Decimal, getcontext

import pytest

from protocol.errors import SeedswarmError
from protocol.quantize import (
    MAX_RELATIVE_ERROR,
    SIGN_BIT,
    SMALLEST_LEVEL_FRACTION,
    TOP_CODE,
    QuantizedScalars,
    QuantizeError,
    admissible_codes,
    dequantize,
    expected_codes,
    levels,
    quantize,
)


def test_level_constants_are_correctly_rounded() -> None:
    getcontext().prec = 60
    ln2 = Decimal(2).ln()
    table = levels(1.0)
    for step in range(8):
        exact = (-ln2 * step / 8).exp()
        assert table[TOP_CODE - step] == float(exact)  # float(Decimal) rounds correctly


def test_levels_shape() -> None:
    table = levels(3.0)
    assert table[0] == 0.0 and table[TOP_CODE] == 3.0
    assert all(a < b for a, b in itertools.pairwise(table))
    ratios = [b / a for a, b in itertools.pairwise(table[1:])]
    assert max(ratios) - 1 <= MAX_RELATIVE_ERROR
    assert min(ratios) - 1 > 0.0905
    assert table[1] == pytest.approx(3.0 * 2**-15.75, rel=1e-12)
    assert 0 <= MAX_RELATIVE_ERROR - (2 ** (1 / 8) - 1) < 1e-7


def test_error_within_bound_for_every_in_range_value() -> None:
    rng = random.Random(1)
    scale = 7.5
    smallest = levels(scale)[1]
    values = [scale]
    for _ in range(20000):
        magnitude = math.exp(rng.uniform(math.log(smallest), math.log(scale)))
        values.append(magnitude if rng.random() < 0.5 else -magnitude)
    # Just above a level is the worst case (rounded up by a whole step, rarely).
    values += [lvl * (1 + 1e-9) for lvl in levels(scale)[1:-1]]
    worst = 0.0
    for key in range(5):
        q = quantize(values, key)
        assert q.scale == scale
        for x, y in zip(values, dequantize(q), strict=True):
            worst = max(worst, abs(y - x) / abs(x))
    assert worst <= MAX_RELATIVE_ERROR
    assert worst > 0.08  # the bound is nearly attained: it is not a loose statement


def _mean_and_bound(x: float, scale: float, draws: int) -> tuple[float, float]:
    q = quantize([x] * draws + [scale], key=99)
    got = dequantize(q)[:-1]
    mean = sum(got) / draws
    var = sum((g - x) ** 2 for g in got) / draws
    return mean, 5 * math.sqrt(var / draws) + 1e-15 * scale


@pytest.mark.parametrize("fraction", [0.73, -0.73, 0.0123, 0.5 * 2**-15.75, -0.2 * 2**-15.75])
def test_unbiased_in_and_below_range(fraction: float) -> None:
    scale = 2.0
    x = fraction * scale
    mean, bound = _mean_and_bound(x, scale, 20000)
    assert abs(mean - x) < bound
    # The rounding is random, not deterministic (both neighbours occur).
    assert len(set(dequantize(quantize([x] * 200 + [scale], key=5))[:-1])) == 2


def test_below_range_rounds_between_zero_and_smallest() -> None:
    scale = 1.0
    smallest = levels(scale)[1]
    got = set(dequantize(quantize([smallest / 3] * 500 + [scale], key=1))[:-1])
    assert got == {0.0, smallest}


def test_reproducible_from_key_and_key_dependent() -> None:
    rng = random.Random(2)
    values = [rng.gauss(0, 1) for _ in range(1000)]
    assert quantize(values, 11) == quantize(values, 11)
    assert quantize(values, 11).codes != quantize(values, 12).codes


def test_sign_is_preserved_and_max_is_exact() -> None:
    rng = random.Random(3)
    values = [rng.gauss(0, 1) * 10 ** rng.uniform(-6, 0) for _ in range(5000)]
    q = quantize(values, 4)
    got = dequantize(q)
    assert all(x * y >= 0 for x, y in zip(values, got, strict=True))
    assert all(
        (code & SIGN_BIT) == (SIGN_BIT if x < 0 and code else 0)
        for x, code in zip(values, q.codes, strict=True)
    )
    i = max(range(len(values)), key=lambda j: abs(values[j]))
    assert got[i] == values[i] and q.codes[i] & TOP_CODE == TOP_CODE


def test_admissible_codes_contain_the_actual_code() -> None:
    rng = random.Random(4)
    values = [rng.gauss(0, 1) for _ in range(500)]
    q = quantize(values, 8)
    for x, code in zip(values, q.codes, strict=True):
        allowed = admissible_codes(x, q.scale)
        assert code in allowed and 1 <= len(allowed) <= 2


def test_zero_and_empty() -> None:
    assert quantize([], 1) == QuantizedScalars(0.0, b"")
    assert quantize([0.0, -0.0], 1) == QuantizedScalars(0.0, b"\x00\x00")
    assert dequantize(QuantizedScalars(0.0, b"\x00\x00")) == [0.0, 0.0]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_is_rejected(bad: float) -> None:
    with pytest.raises(QuantizeError):
        quantize([1.0, bad], 1)
    assert issubclass(QuantizeError, ValueError) and issubclass(QuantizeError, SeedswarmError)


def test_malformed_messages_are_rejected() -> None:
    with pytest.raises(QuantizeError):
        dequantize(QuantizedScalars(1.0, bytes([SIGN_BIT])))
    with pytest.raises(QuantizeError):
        dequantize(QuantizedScalars(0.0, b"\x01"))
    for scale in (-1.0, math.nan, math.inf):
        with pytest.raises(QuantizeError):
            dequantize(QuantizedScalars(scale, b"\x01"))


def test_tiny_scale_stays_consistent() -> None:
    # Subnormal levels collapse but quantize and dequantize still agree and stay unbiased.
    x = 5e-320
    mean, _ = _mean_and_bound(x / 3, x, 4000)
    assert abs(mean - x / 3) < 0.1 * x


def test_known_answer() -> None:
    # Pinned codes: verifiers on other machines must reproduce a sender's bytes exactly.
    q = quantize([0.5, -0.25, 1e-7, 0.3, -1.0, 0.0, 0.77, 2e-3], 1234567)
    assert q == QuantizedScalars(1.0, bytes.fromhex("77ef0071ff007c37"))
    assert dequantize(q)[:2] == [0.5, -0.25]  # powers of two of the scale are exact levels


def test_expected_codes_reproduce_the_coins_of_the_key() -> None:
    rng = random.Random(7)
    values = [rng.gauss(0.0, 1.0) for _ in range(200)]
    key = 12345
    q = quantize(values, key)
    for i, v in enumerate(values):
        assert expected_codes(v, v, q.scale, key, i) == (q.codes[i],)
        wide = expected_codes(v * 0.97 if v > 0 else v * 1.03, v * 1.03 if v > 0 else v * 0.97,
                              q.scale, key, i)
        assert q.codes[i] in wide
    # An interval across zero covers both signs; a reversed or non-finite one is refused.
    around = expected_codes(-1e-9, 1e-9, 1.0, key, 0)
    assert 0 in around and all(c != SIGN_BIT for c in around)
    with pytest.raises(QuantizeError):
        expected_codes(1.0, 0.5, 1.0, key, 0)
    with pytest.raises(QuantizeError):
        expected_codes(0.0, math.inf, 1.0, key, 0)


@pytest.mark.parametrize("key", [-1, 2**64, True, False, 1.0, "1"])
def test_invalid_keys_are_refused_with_the_modules_error(key: object) -> None:
    # whatever the values: an all-zero vector needs no coin but the key is still checked
    for values in ([0.5, -0.25], [0.0, 0.0], []):
        with pytest.raises(QuantizeError):
            quantize(values, key)  # type: ignore[arg-type]
    with pytest.raises(QuantizeError):
        expected_codes(0.1, 0.2, 1.0, key, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize("index", [-1, True, 0.5, 8 * 2**64])
def test_invalid_scalar_indices_are_refused_with_the_modules_error(index: object) -> None:
    with pytest.raises(QuantizeError):
        expected_codes(0.1, 0.2, 1.0, 7, index)  # type: ignore[arg-type]


def test_keys_at_and_above_two_to_the_63() -> None:
    # seeds are below 2**63, but every u64 is a valid key: the coins differ from key to key
    values = [0.3] * 64 + [1.0]
    codes = {key: quantize(values, key).codes for key in (2**63 - 1, 2**63, 2**64 - 1)}
    assert len(set(codes.values())) == 3
    assert all(set(c[:-1]) == {113, 114} and c[-1] == TOP_CODE for c in codes.values())
    largest = 8 * 2**64 - 1  # the last coin of the largest key's stream
    assert expected_codes(0.3, 0.3, 1.0, 2**64 - 1, largest)[0] in (113, 114)


def test_the_documented_smallest_level() -> None:
    assert levels(1.0)[1] == pytest.approx(SMALLEST_LEVEL_FRACTION, rel=1e-15)
    assert levels(4.0)[1] == pytest.approx(4.0 * SMALLEST_LEVEL_FRACTION, rel=1e-15)


def test_a_zero_scale_allows_only_zero_codes() -> None:
    with pytest.raises(QuantizeError):
        dequantize(QuantizedScalars(0.0, b"\x00\x01"))  # one nonzero code among zeros
    for scale in (0.0, -0.0):
        with pytest.raises(QuantizeError):
            levels(scale)
        with pytest.raises(QuantizeError):
            admissible_codes(0.1, scale)
        with pytest.raises(QuantizeError):
            expected_codes(0.0, 0.1, scale, 7, 0)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_admissible_codes_of_a_non_finite_value_are_refused(bad: float) -> None:
    with pytest.raises(QuantizeError):
        admissible_codes(bad, 1.0)
