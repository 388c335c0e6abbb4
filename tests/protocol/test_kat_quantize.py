"""Known answers: the one-byte quantizer's levels, coins and codes.

Verifiers recompute a sender's codes from its values and its first seed (the coins' key), so
the levels, the coin stream and the rounding must be identical everywhere. Every value in
``VALUES`` but the scale lies strictly between two levels, so every code below depends on its
coin: a change of the coins' hash, key encoding or comparison shows in these vectors.
Computed once and written down.
"""

from __future__ import annotations

from protocol.quantize import (
    QuantizedScalars,
    admissible_codes,
    dequantize,
    expected_codes,
    levels,
    quantize,
)
from protocol.quantize import _uniforms as coins

# Midpoints between neighbouring levels of scale 1 (mixed signs), the scale itself, and three
# magnitudes below the smallest level (rounded between 0 and the smallest level).
VALUES = [
    0.9585020216023357, -0.5226269331663145, 0.09238826211815737, 0.03884447921333954,
    -0.002887133191192418, 0.0002145874583079084, 2.459719586117073e-05, -9.07293025972535e-06,
    0.8789502292291929, 0.21973755730729821, -0.016332091661447327, 0.000510377864420229,
    9.022291222476306e-05, -3.7934061731776896e-05, 1.8967030865888448e-05, 0.004083022915361832,
    1.0, 9.07293025972535e-06, -9.07293025972535e-06, 4.536465129862675e-06,
]


def test_levels_of_scale_one() -> None:
    # code -> level: eight per octave from the top (1.0) down to 2**-15.75
    table = levels(1.0)
    assert {c: table[c].hex() for c in (0, 1, 2, 64, 119, 120, 126, 127)} == {
        0: "0x0.0p+0",
        1: "0x1.306fe0a31b715p-16",
        2: "0x1.4bfdad5362a27p-16",
        64: "0x1.172b83c7d517bp-8",
        119: "0x1.0000000000000p-1",
        120: "0x1.172b83c7d517bp-1",
        126: "0x1.d5818dcfba487p-1",
        127: "0x1.0000000000000p+0",
    }


def test_coin_stream() -> None:
    # the uniforms of key 1234567 (BLAKE2b-512 keyed by the u64 key, person ss:quantize,
    # block counter u64; top 53 bits of each little-endian word): both blocks of 8
    assert [u.hex() for u in coins(1234567, 10)] == [
        "0x1.f68bea1d2e888p-2", "0x1.789ee60847c00p-5", "0x1.d3cd602cb3f22p-2",
        "0x1.0bdad89f82236p-2", "0x1.15b7b28f280bdp-1", "0x1.f4972c1dba6b8p-3",
        "0x1.851c925ddbff0p-2", "0x1.652ecc86067d8p-1", "0x1.a1c4c09b12a3dp-1",
        "0x1.192c083e49ad2p-2",
    ]
    # keys 0, 2**63 and 2**64 - 1 (seeds at and above 2**63 are valid keys)
    assert [u.hex() for u in coins(0, 3)] == [
        "0x1.082c913d075e6p-1", "0x1.901a3147bff9ep-1", "0x1.4162e05fd67c8p-4"]
    assert [u.hex() for u in coins(2**63, 3)] == [
        "0x1.2a8d18f64d89cp-2", "0x1.732ea1d62aa14p-3", "0x1.d5693664e131ap-1"]
    assert [u.hex() for u in coins(2**64 - 1, 3)] == [
        "0x1.3845855f90518p-3", "0x1.aa05b0869f7e8p-1", "0x1.f93c07aa70d00p-9"]


def test_codes_under_four_keys() -> None:
    # the codes of VALUES (scale 1.0) under keys 0, 1234567, 2**63, 2**64 - 1
    expected = {
        0: "7ef76459bc1d04817d6dd028138a02407f008100",
        1234567: "7ff8645abb1e05007d6ed028138a02407f018100",
        2**63: "7ff8635abc1d04007e6ecf28148a013f7f010000",
        2**64 - 1: "7ff76459bb1d04007e6ed027138901407f008101",
    }
    for key, codes in expected.items():
        assert quantize(VALUES, key) == QuantizedScalars(1.0, bytes.fromhex(codes)), key


def test_a_coin_equal_to_the_rounding_fraction_rounds_down() -> None:
    # (value - lower level) / (upper - lower) equals the coin exactly for scalars 0, 19 and 20
    # of key 1234567: a value rounds up only when its coin is strictly below that fraction
    values = [0.0] * 21
    values[0], values[1] = 2.922777745872378e-05, 1.0
    values[19], values[20] = 3.1696621099186184e-05, -2.8314639562639445e-05
    assert quantize(values, 1234567).codes.hex() == (
        "067f00000000000000000000000000000000000786")
    assert expected_codes(values[0], values[0], 1.0, 1234567, 0) == (6,)
    assert expected_codes(values[20], values[20], 1.0, 1234567, 20) == (0x86,)


def test_one_scalar_contribution() -> None:
    # a single scalar is its own scale: the top code, whatever the key
    assert quantize([-0.37], 5) == QuantizedScalars(0.37, b"\xff")
    assert quantize([2.5e-300], 2**64 - 1) == QuantizedScalars(2.5e-300, b"\x7f")


def test_expected_codes_follow_the_coin_of_the_index() -> None:
    # scalar 9 (second coin block) of key 1234567; intervals within and across a threshold
    assert expected_codes(0.30, 0.31, 1.0, 1234567, 9) == (113, 114)
    assert expected_codes(-0.31, -0.30, 1.0, 1234567, 9) == (242, 241)
    assert expected_codes(0.3, 0.3, 1.0, 2**63, 12) == (113,)
    # an interval across zero, at the smallest levels: both signs, zero once
    assert expected_codes(-2e-5, 2e-5, 1.0, 1234567, 3) == (0x82, 0x81, 0, 1, 2)


def test_admissible_codes() -> None:
    # both neighbours of 0.3; -0.5 is exactly a level (code 119 with the sign bit)
    assert admissible_codes(0.3, 1.0) == (113, 114)
    assert admissible_codes(-0.5, 1.0) == (247,)


def test_dequantize() -> None:
    # the floats every replica applies for scale 3.0 and codes 7f ff 01 81 40 00 c0
    q = QuantizedScalars(3.0, bytes.fromhex("7fff01814000c0"))
    assert [v.hex() for v in dequantize(q)] == [
        "0x1.8000000000000p+1", "-0x1.8000000000000p+1", "0x1.c8a7d0f4a92a0p-15",
        "-0x1.c8a7d0f4a92a0p-15", "0x1.a2c145abbfa38p-7", "0x0.0p+0", "-0x1.a2c145abbfa38p-7",
    ]
