"""The one-byte wire format of a contribution's scalars.

Each scalar travels as one byte against a per-message ``scale = max |g|``:

* bit 7 is the sign, bits 0-6 an exponent code ``e``;
* ``e = 0`` is exact zero (``0x80``, a "negative zero", is not a valid code);
* ``e = 1 .. 127`` is the magnitude ``scale * 2**(-(127 - e) / 8)``: eight levels per octave,
  the largest equal to ``scale`` and the smallest ``scale * 2**-15.75`` (about ``scale / 55000``).

A value is rounded stochastically to one of the two levels that bracket its magnitude, with the
probabilities that make the expected dequantized value equal the value (unbiased). Magnitudes
below the smallest level are rounded the same way between 0 and the smallest level, so they
stay unbiased too, with a variance of at most ``smallest**2 / 4``. The sign is always kept.

Worst case within the range: the two neighbours differ by a factor ``2**(1/8)``, so one
rounding is off by less than ``MAX_RELATIVE_ERROR = 2**(1/8) - 1`` (about 9.05%) of the value,
and its standard deviation is at most half of that. The coin flips come from a keyed hash of
the contribution's first seed, so anyone can reproduce the codes from the values.

Levels are computed from a table of eight correctly rounded constants and exact power-of-two
scaling (no ``pow`` or ``log`` from the platform's libm), so every replica dequantizes to the
same floats bit for bit; every replica, the sender included, must apply those values.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from protocol.errors import SeedswarmError

LEVELS_PER_OCTAVE = 8
TOP_CODE = 127
SIGN_BIT = 0x80
MAX_RELATIVE_ERROR = 0.0905078  # 2**(1/8) - 1 = 0.09050773..., rounded up
SMALLEST_LEVEL_FRACTION = 2.0 ** -15.75  # smallest nonzero level / scale (documentation only)

# 2**(-r/8) for r = 0..7, correctly rounded to binary64 (checked in tests against Decimal).
_INV_ROOTS = (
    1.0,
    float.fromhex("0x1.d5818dcfba487p-1"),
    float.fromhex("0x1.ae89f995ad3adp-1"),
    float.fromhex("0x1.8ace5422aa0dbp-1"),
    float.fromhex("0x1.6a09e667f3bcdp-1"),
    float.fromhex("0x1.4bfdad5362a27p-1"),
    float.fromhex("0x1.306fe0a31b715p-1"),
    float.fromhex("0x1.172b83c7d517bp-1"),
)

_PERSON_QUANTIZE = b"ss:quantize"


class QuantizeError(SeedswarmError, ValueError):
    """Values or codes that the one-byte format cannot represent (non-finite, malformed)."""


@dataclass(frozen=True)
class QuantizedScalars:
    """A message's scalars: one byte each, against a common scale."""

    scale: float
    codes: bytes


def levels(scale: float) -> list[float]:
    """The 128 magnitudes of codes 0..127 for ``scale`` (ascending; code 0 is 0.0)."""
    _check_scale(scale)
    table = [0.0]
    for e in range(1, TOP_CODE + 1):
        octave, step = divmod(TOP_CODE - e, LEVELS_PER_OCTAVE)
        table.append(math.ldexp(scale * _INV_ROOTS[step], -octave))
    return table


def quantize(values: Sequence[float], key: int) -> QuantizedScalars:
    """One byte per value, stochastically rounded (unbiased) with coins drawn from ``key``.

    Raises QuantizeError on NaN or infinite values, or a key that is not a u64 (even when every
    value is zero and no coin is needed: the same inputs are refused everywhere).
    """
    xs = [float(v) for v in values]
    if not all(math.isfinite(x) for x in xs):
        raise QuantizeError("cannot quantize a non-finite value")
    coins = _uniforms(key, len(xs))  # checks the key
    scale = max((abs(x) for x in xs), default=0.0)
    if scale == 0.0:
        return QuantizedScalars(0.0, bytes(len(xs)))
    table = levels(scale)
    codes = bytearray()
    for x, coin in zip(xs, coins, strict=True):
        code = _round_magnitude(abs(x), table, coin)
        codes.append(code | SIGN_BIT if code and x < 0 else code)
    return QuantizedScalars(scale, bytes(codes))


def dequantize(q: QuantizedScalars) -> list[float]:
    """The values every replica applies. Raises QuantizeError on a bad scale or code."""
    if q.scale == 0.0:
        if any(q.codes):
            raise QuantizeError("nonzero code with a zero scale")
        return [0.0] * len(q.codes)
    table = levels(q.scale)
    out = []
    for code in q.codes:
        if code == SIGN_BIT:
            raise QuantizeError("0x80 is not a valid code")
        magnitude = table[code & TOP_CODE]
        out.append(-magnitude if code & SIGN_BIT else magnitude)
    return out


def admissible_codes(value: float, scale: float) -> tuple[int, ...]:
    """The codes an honest ``quantize`` can give ``value`` under ``scale`` (for verifiers).

    One code if the magnitude is exactly a level (or at least ``scale``), else the two
    neighbours. A verifier that recomputes a value with some tolerance should take the union
    over the ends of its tolerance interval.
    """
    if not math.isfinite(value):
        raise QuantizeError("non-finite value")
    table = levels(scale)
    magnitude = abs(value)
    low = bisect.bisect_right(table, magnitude) - 1
    candidates = [low] if low == TOP_CODE or table[low] == magnitude else [low, low + 1]
    return tuple(c | SIGN_BIT if c and value < 0 else c for c in candidates)


def expected_codes(
    value_lo: float, value_hi: float, scale: float, key: int, index: int
) -> tuple[int, ...]:
    """Every code ``quantize(values, key)`` gives scalar ``index`` for a value in
    ``[value_lo, value_hi]`` under ``scale``, ascending by the value it stands for.

    The coin of ``index`` is fixed by ``key``, and for a fixed coin the rounding is monotone in
    the magnitude, so the codes are those between the codes of the interval's ends: one code
    when the whole interval lies on one side of the coin's threshold. A verifier that knows the
    key uses this instead of ``admissible_codes`` (which lets a sender always round up).
    """
    if not (math.isfinite(value_lo) and math.isfinite(value_hi)) or value_lo > value_hi:
        raise QuantizeError(f"need a finite interval, got [{value_lo}, {value_hi}]")
    table = levels(scale)
    coin = _uniform_at(key, index)  # checks the key and the index

    def level(value: float) -> int:  # signed: -127 .. 127
        code = _round_magnitude(abs(value), table, coin)
        return -code if value < 0 else code

    out: list[int] = []
    for signed in range(level(value_lo), level(value_hi) + 1):
        out.append(-signed | SIGN_BIT if signed < 0 else signed)
    return tuple(out)


def _round_magnitude(magnitude: float, table: list[float], coin: float) -> int:
    # ``table`` is sorted, so bisect finds the largest code whose level does not exceed the
    # magnitude by exact float comparisons: no platform-dependent log is involved.
    low = bisect.bisect_right(table, magnitude) - 1
    if low == TOP_CODE or table[low] == magnitude:
        return low
    lo, hi = table[low], table[low + 1]
    return low + 1 if coin < (magnitude - lo) / (hi - lo) else low


def _uniforms(key: int, count: int) -> list[float]:
    """``count`` uniforms in [0, 1) from a keyed hash of ``key``, eight per 64-byte block."""
    _check_key(key)
    base = hashlib.blake2b(digest_size=64, key=struct.pack("<Q", key), person=_PERSON_QUANTIZE)
    out: list[float] = []
    for block in range((count + 7) // 8):
        h = base.copy()
        h.update(struct.pack("<Q", block))
        out.extend((w >> 11) * 2.0**-53 for w in struct.unpack("<8Q", h.digest()))
    return out[:count]


def _uniform_at(key: int, index: int) -> float:
    """The coin ``_uniforms(key, n)[index]`` for any ``n > index``, hashing one block only."""
    _check_key(key)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 8 * 2**64:
        raise QuantizeError(f"index must be an integer in [0, 2**67), got {index!r}")
    block, offset = divmod(index, 8)
    h = hashlib.blake2b(digest_size=64, key=struct.pack("<Q", key), person=_PERSON_QUANTIZE)
    h.update(struct.pack("<Q", block))
    word: int = struct.unpack("<8Q", h.digest())[offset]
    return (word >> 11) * 2.0**-53


def _check_key(key: int) -> None:
    if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key < 2**64:
        raise QuantizeError(f"key must be an integer in [0, 2**64), got {key!r}")


def _check_scale(scale: float) -> None:
    if not (math.isfinite(scale) and scale > 0.0):
        raise QuantizeError(f"scale must be finite and positive, got {scale!r}")
