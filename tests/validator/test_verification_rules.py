"""Stage 2's rules on their own (no model): the tolerance band, the policy, the secret sample,
the cost model, and the scalar check branch by branch, with exact expected values.

tests/validator/test_verification.py runs the same rules against real miners' work.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import pytest

from protocol.errors import ConfigError
from protocol.messages import Contribution
from protocol.quantize import quantize
from protocol.randomness import validator_sample_key
from validator.verification import (
    BACKWARD_FORWARD_RATIO,
    FLOAT32_EPSILON,
    FO_AUDIT_PROBABILITY,
    DetectionTarget,
    Mismatch,
    SampleChoice,
    Tolerance,
    VerificationCost,
    VerificationPolicy,
    VerificationResult,
    admissible_range,
    audit_draw,
    check_scalar,
    check_scalars,
    choose_sample,
    contribution_cost,
    detection_sample_size,
    expected_range,
    quantize_key,
    signed_level,
    verify_contribution,
    zo_noise_floor,
)

MINER = bytes(range(100, 132))
FOUR = DetectionTarget(0.5, 1, 0.9)  # a sample of 4 scalars
SECRET = b"s" * 16
ZO = Contribution(
    network_id="kat-net", round_index=7, sender=MINER, sequence=1,
    base_model_hash=bytes(range(32)), codec="zo", direction="gaussian", rank=1, block_counts=(),
    scale=1.0, codes=bytes(64), compute_ms=0,
)
FO = dataclasses.replace(ZO, codec="fo", block_counts=(64,))
# The first seed of MINER in round 7 of kat-net (the coins' key), recorded with plain hashlib.
KEY = 8449042483978864877


# -- constants, tolerance, policy -----------------------------------------------------------


def test_constants() -> None:
    assert (FLOAT32_EPSILON, BACKWARD_FORWARD_RATIO, FO_AUDIT_PROBABILITY) == (2.0**-23, 2, 0.05)


def test_tolerance_band() -> None:
    assert Tolerance() == Tolerance(relative=0.03, of_reference=0.02, absolute=0.0)
    assert Tolerance().band(-2.0, 4.0) == 0.14
    assert Tolerance(0.25, 0.125, 0.5).band(-2.0, 4.0) == 1.5  # 0.5 + 0.5 + 0.5
    assert Tolerance(0.0, 0.0, 0.0).band(3.0, 3.0) == 0.0


@pytest.mark.parametrize("field", ["relative", "of_reference", "absolute"])
@pytest.mark.parametrize("bad", [-1e-9, math.nan, math.inf])
def test_tolerance_parts_are_finite_and_non_negative(field: str, bad: float) -> None:
    with pytest.raises(ConfigError):
        Tolerance(**{field: bad})


def test_zo_noise_floor() -> None:
    # 32 float32 ulps of the loss over 2 eps
    assert zo_noise_floor(2.5, 1e-3) == 0.00476837158203125 / 4  # 8 ulps
    assert zo_noise_floor(-2.5, 1e-3) == 0.00476837158203125 / 4
    assert zo_noise_floor(2.5, 0.5, ulps=4.0) == 2.5 * 4.0 * 2.0**-23
    for loss, eps in ((math.nan, 1e-3), (math.inf, 1e-3), (2.5, 0.0), (2.5, -1e-3),
                      (2.5, math.nan), (2.5, math.inf)):
        with pytest.raises(ConfigError):
            zo_noise_floor(loss, eps)


def test_policy_defaults_and_sample_sizes() -> None:
    policy = VerificationPolicy()
    assert policy == VerificationPolicy(detection=DetectionTarget(0.02, 8, 0.95), min_sample=4,
                                        zo_audit_probability=1.0, fo_audit_probability=0.05,
                                        tolerance=Tolerance(), zo_ulps=8.0)
    sizes = {n: policy.sample_size(n) for n in (1, 3, 4, 5, 19, 64, 256, 4096)}
    assert sizes == {1: 1, 3: 3, 4: 4, 5: 5, 19: 19, 64: 19, 256: 19, 4096: 19}
    assert (policy.audit_probability("zo"), policy.audit_probability("fo")) == (1.0, 0.05)
    assert VerificationPolicy(FOUR, min_sample=1).sample_size(7) == 4
    assert VerificationPolicy(FOUR, min_sample=6).sample_size(7) == 6


def test_sample_size_meets_the_stated_detection_target() -> None:
    # n >= ln(1 - p) / (R ln(1 - f)), the smallest such n
    assert detection_sample_size(0.02, 8, 0.95) == 19
    assert detection_sample_size(0.02, 1, 0.9) == 114
    assert detection_sample_size(0.5, 1, 0.9) == 4
    for f, r, p in ((0.02, 8, 0.95), (0.02, 1, 0.9), (0.1, 3, 0.99), (1 / 64, 7, 0.9)):
        n = detection_sample_size(f, r, p)
        assert (1 - f) ** (n * r) <= 1 - p < (1 - f) ** ((n - 1) * r)
    # The default: a 2 % fabricator is caught within 8 rounds with probability >= 0.95 at
    # any K, counting exactly (without replacement); the old max(4, K/16) sample saw one
    # fabricated scalar of 64 within 7 rounds with probability 0.37 only.
    target = VerificationPolicy().detection
    for k in (50, 64, 256, 1024, 4096):
        n = VerificationPolicy().sample_size(k)
        assert target.caught_within(8, k, n) >= 0.95
    assert 1 - (1 - max(4, 64 // 16) / 64) ** 7 < 0.4  # one fabricated scalar in 64
    assert DetectionTarget(1 / 64, 8, 0.95).caught_within(7, 64, VerificationPolicy().
                                                            sample_size(64)) > 0.9
    for bad in ((0.0, 8, 0.9), (1.0, 8, 0.9), (0.02, 0, 0.9), (0.02, 8, 1.0), (0.02, 8, 0.0)):
        with pytest.raises(ConfigError):
            DetectionTarget(*bad)


@pytest.mark.parametrize("changes", [
    {"zo_audit_probability": -0.1}, {"zo_audit_probability": 1.5},
    {"fo_audit_probability": -0.1}, {"fo_audit_probability": math.inf},
    {"min_sample": 0}, {"zo_ulps": 0.0}, {"zo_ulps": math.nan},
])
def test_invalid_policies(changes: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        VerificationPolicy(**changes)  # type: ignore[arg-type]


def test_policy_edges_are_valid() -> None:
    VerificationPolicy(FOUR, zo_audit_probability=0.0, fo_audit_probability=1.0, min_sample=1)


# -- the secret sample ----------------------------------------------------------------------


def test_audit_draw_and_sample() -> None:
    # the validator's key for MINER's round 7 (person ss:verify-key), its audit draw
    # (person ss:audit) and the 4 of 64 scalars it checks
    key = validator_sample_key(SECRET, 7, MINER)
    draw = audit_draw(key)
    assert draw.hex() == "0x1.469125c4dce81p-1"
    assert choose_sample(SECRET, ZO, VerificationPolicy(FOUR)) == SampleChoice(True, (0, 8, 11, 40))
    # FO: audited only when the draw is strictly below the audit probability
    assert choose_sample(SECRET, FO, VerificationPolicy(FOUR)) == SampleChoice(False, ())
    at_draw = VerificationPolicy(FOUR, fo_audit_probability=draw)
    assert not choose_sample(SECRET, FO, at_draw).audited
    above = VerificationPolicy(FOUR, fo_audit_probability=math.nextafter(draw, 1.0))
    assert choose_sample(SECRET, FO, above) == SampleChoice(True, (0, 8, 11, 40))
    one = dataclasses.replace(ZO, codes=b"\x7f")
    assert choose_sample(SECRET, one, VerificationPolicy(FOUR)) == SampleChoice(True, (0,))


def test_quantize_key_is_the_first_seed() -> None:
    assert quantize_key(ZO) == KEY


# -- cost -----------------------------------------------------------------------------------


def test_contribution_cost() -> None:
    assert contribution_cost("zo", 256, 16, 4, audited=True) == VerificationCost(32, 16, 512,
                                                                                 256)
    assert contribution_cost("fo", 256, 16, 4, audited=True) == VerificationCost(12, 16, 12, 256)
    assert contribution_cost("fo", 256, 0, 5, audited=False) == VerificationCost(0, 0, 15, 256)
    zo = contribution_cost("zo", 256, 16, 4, audited=True)
    assert (zo.fraction, zo.direction_fraction) == (0.0625, 0.0625)
    fo = contribution_cost("fo", 64, 8, 4, audited=True)
    assert (fo.fraction, fo.direction_fraction) == (1.0, 0.125)
    nothing = VerificationCost(3, 5, 0, 0)
    assert (nothing.fraction, nothing.direction_fraction) == (0.0, 0.0)


def test_result_reasons() -> None:
    cost = VerificationCost(0, 0, 0, 0)
    assert VerificationResult(None, (), (), cost).reason == "not audited"
    assert not VerificationResult(None, (), (), cost).penalize
    assert VerificationResult(True, (1, 2, 3, 4), (), cost).reason == "4 scalars match"
    assert not VerificationResult(True, (1, 2, 3, 4), (), cost).penalize
    misses = (Mismatch(3, 0x10, 0.5, 0.01, "why 3"), Mismatch(9, 0x11, 0.5, 0.01, "why 9"))
    failed = VerificationResult(False, (1, 3, 9, 12), misses, cost)
    assert failed.reason == "2/4 scalars differ (#3: why 3)" and failed.penalize


# -- levels and ranges ----------------------------------------------------------------------


def test_signed_levels_and_ranges() -> None:
    assert [signed_level(c) for c in (0, 1, 0x7F, 0x81, 0xFF)] == [0, 1, 127, -1, -127]
    # either neighbour of every value in the interval (no key)
    assert admissible_range(0.29, 0.31, 1.0) == (112, 114)
    assert admissible_range(-0.31, -0.29, 1.0) == (-114, -112)
    # the coin of scalar 9 of key 1234567 decides: one level for a point, two across it
    assert expected_range(0.29, 0.31, 1.0, 1234567, 9) == (113, 114)
    assert expected_range(0.3, 0.3, 1.0, 1234567, 9) == (113, 113)


# -- the scalar check, branch by branch -----------------------------------------------------


def test_check_scalar_branches() -> None:
    def miss(code: int, value: float, scale: float, band: float, why: str) -> Mismatch:
        return Mismatch(5, code, value, band, why)

    assert check_scalar(5, 0x10, math.nan, 1.0, 0.0) == miss(0x10, math.nan, 1.0, 0.0,
                                                             "recomputed value is not finite")
    assert check_scalar(5, 0x10, math.inf, 1.0, 0.5) == miss(0x10, math.inf, 1.0, 0.5,
                                                             "recomputed value is not finite")
    # zero scale: only code 0, and only for a value within the band (the edge included)
    assert check_scalar(5, 0, 0.25, 0.0, 0.25) is None
    assert check_scalar(5, 0, -0.25, 0.0, 0.25) is None
    assert check_scalar(5, 0, 0.5, 0.0, 0.25) == miss(0, 0.5, 0.0, 0.25,
                                                      "zero scale, nonzero value")
    assert check_scalar(5, 1, 0.0, 0.0, 0.25) == miss(1, 0.0, 0.0, 0.25,
                                                      "zero scale, nonzero value")
    assert check_scalar(5, 0x80, 0.0, 1.0, 0.25) == miss(0x80, 0.0, 1.0, 0.25,
                                                         "invalid code 0x80")
    # a value beyond the declared scale by more than the band (the edge is still judged)
    assert check_scalar(5, 0x7F, 1.5, 1.0, 0.25) == miss(
        0x7F, 1.5, 1.0, 0.25, "|value| exceeds the declared scale 1")
    assert check_scalar(5, 0x7F, 1.25, 1.0, 0.25) is None
    assert check_scalar(5, 0xFF, -1.25, 1.0, 0.25) is None
    # without a key: either neighbour, the ends of the range included
    assert check_scalar(5, 112, 0.3, 1.0, 0.01) is None
    assert check_scalar(5, 114, 0.3, 1.0, 0.01) is None
    assert check_scalar(5, 115, 0.3, 1.0, 0.01) == miss(115, 0.3, 1.0, 0.01,
                                                        "code level 115 outside [112, 114]")
    assert check_scalar(5, 0xF1, -0.3, 1.0, 0.01) is None
    assert check_scalar(5, 0xF3, -0.3, 1.0, 0.01) == miss(
        0xF3, -0.3, 1.0, 0.01, "code level -115 outside [-114, -112]")
    # with the key: the coin of scalar 9 of key 1234567 makes 0.3 round to 113 only
    assert check_scalar(9, 113, 0.3, 1.0, 0.0, key=1234567) is None
    assert Mismatch(9, 114, 0.3, 0.0, "code level 114 outside [113, 113]") == check_scalar(
        9, 114, 0.3, 1.0, 0.0, key=1234567)
    assert check_scalar(9, 114, 0.3, 1.0, 0.0) is None  # without the key 114 would pass


def honest_codes(values: Sequence[float]) -> Contribution:
    q = quantize(values, KEY)
    return dataclasses.replace(ZO, scale=q.scale, codes=q.codes)


VALUES = [0.3, -0.7, 0.05, 1.0, -0.002, 0.61, 0.0, -0.33]


def test_check_scalars() -> None:
    c = honest_codes(VALUES)
    indices = [0, 1, 2, 3, 4, 5, 6, 7]
    assert check_scalars(c, indices, VALUES, Tolerance(0.0, 0.0, 0.0)) == []
    # scalar 1 recomputed 20 % smaller: outside a 3 % relative band, inside a 25 % one
    moved = [*VALUES]
    moved[1] = -0.56
    found = check_scalars(c, indices, moved, Tolerance(0.03, 0.0, 0.0))
    assert [m.index for m in found] == [1] and found[0].band == 0.016800000000000002  # 0.03 x 0.56
    assert check_scalars(c, indices, moved, Tolerance(0.25, 0.0, 0.0)) == []
    # the band's reference part is the largest |recomputed| of the sample (NaN ignored)
    tiny = [*VALUES]
    tiny[4] = -0.02
    assert [m.index for m in check_scalars(c, indices, tiny, Tolerance(0.0, 0.0, 0.0))] == [4]
    assert check_scalars(c, indices, tiny, Tolerance(0.0, 0.02, 0.0)) == []
    with_nan = [*tiny]
    with_nan[7] = math.nan
    found = check_scalars(c, indices, with_nan, Tolerance(0.0, 0.02, 0.0))
    assert [(m.index, m.band) for m in found] == [(7, 0.0)]
    with pytest.raises(ConfigError):
        check_scalars(c, [0, 1], [0.3], Tolerance())


class Oracle:
    """Returns the given values at the requested indices and records the requests."""

    def __init__(self, values: Sequence[float]) -> None:
        self.values = list(values)
        self.asked: list[tuple[int, ...]] = []

    def recompute(self, contribution: Contribution, indices: Sequence[int]) -> list[float]:
        self.asked.append(tuple(indices))
        return [self.values[i] for i in indices]


def test_verify_contribution() -> None:
    c = dataclasses.replace(honest_codes(VALUES * 8))  # 64 scalars
    policy = VerificationPolicy(FOUR, tolerance=Tolerance(0.0, 0.0, 0.0))
    oracle = Oracle(VALUES * 8)
    result = verify_contribution(c, oracle, secret=SECRET, local_steps=4, policy=policy)
    assert result == VerificationResult(True, (0, 8, 11, 40), (),
                                        VerificationCost(8, 4, 128, 64))
    assert oracle.asked == [(0, 8, 11, 40)]
    # scalar 11 (VALUES[3] = 1.0, the scale) recomputed 0.0625 lower: only an absolute
    # tolerance of at least that much (added to the policy's) lets it through
    off = VALUES * 8
    off[11] = 0.9375
    failed = verify_contribution(c, Oracle(off), secret=SECRET, local_steps=4, policy=policy)
    assert failed.verified is False and [m.index for m in failed.mismatches] == [11]
    assert verify_contribution(c, Oracle(off), secret=SECRET, local_steps=4, policy=policy,
                               absolute=0.0625).verified is True
    loose = VerificationPolicy(FOUR, tolerance=Tolerance(0.0, 0.0, 0.03125))
    assert verify_contribution(c, Oracle(off), secret=SECRET, local_steps=4, policy=loose,
                               absolute=0.03125).verified is True
    assert verify_contribution(c, Oracle(off), secret=SECRET, local_steps=4,
                               policy=loose).verified is False


def test_an_unaudited_contribution_is_not_recomputed() -> None:
    oracle = Oracle([0.0] * 64)
    result = verify_contribution(FO, oracle, secret=SECRET, local_steps=4)
    assert result == VerificationResult(None, (), (), VerificationCost(0, 0, 12, 64))
    assert oracle.asked == []


# -- the rounding-direction bias test ----------------------------------------------------------


def _quantized(values: Sequence[float], *, up: bool) -> Contribution:
    """FO with ``values`` quantized by the protocol's coins, or always rounded up in magnitude."""
    from protocol.quantize import TOP_CODE, levels

    honest = dataclasses.replace(FO, codes=bytes(len(values)), block_counts=(len(values),))
    q = quantize(values, quantize_key(honest))
    if not up:
        return dataclasses.replace(honest, scale=q.scale, codes=q.codes)
    table = levels(q.scale)
    codes = bytearray()
    for v in values:
        low = max(i for i, level in enumerate(table) if level <= abs(v))
        top = low if low == TOP_CODE or table[low] == abs(v) else low + 1
        codes.append(top | 0x80 if top and v < 0 else top)
    return dataclasses.replace(honest, scale=q.scale, codes=bytes(codes))


@pytest.mark.parametrize("trial", range(8))
def test_rounding_bias_flags_round_up_and_passes_the_coins_under_fo_noise(trial: int) -> None:
    import random

    from validator.verification import BIAS_LIMIT_SD, rounding_bias

    rng = random.Random(trial)
    values = [rng.gauss(0.0, 1.0) for _ in range(256)]
    sample = sorted(rng.sample(range(256), 114))  # an FO audit's sample size
    # the validator's recomputation is off by a relative 1e-3 (FO is not bit-exact)
    seen = [v * (1.0 + rng.uniform(-1e-3, 1e-3)) for v in values]
    recomputed = [seen[i] for i in sample]
    honest = rounding_bias(_quantized(values, up=False), sample, recomputed)
    cheat = rounding_bias(_quantized(values, up=True), sample, recomputed)
    assert honest is not None and cheat is not None
    assert abs(honest) < BIAS_LIMIT_SD / 2 < BIAS_LIMIT_SD < cheat


def test_rounding_bias_needs_enough_scalars_and_a_scale() -> None:
    from validator.verification import rounding_bias

    c = _quantized([0.3] * 20, up=True)
    assert rounding_bias(c, range(10), [0.3] * 10) is None  # under BIAS_MIN_SCALARS
    assert rounding_bias(dataclasses.replace(ZO, scale=0.0), range(64), [0.0] * 64) is None


def test_a_round_up_fo_audit_fails_on_the_bias_alone() -> None:
    import random

    class Oracle:
        def __init__(self, values: Sequence[float]) -> None:
            self.values = values

        def recompute(self, contribution: Contribution, indices: Sequence[int]) -> list[float]:
            return [self.values[i] * 1.0005 for i in indices]  # inside FO's band everywhere

    rng = random.Random(7)
    # magnitudes well below the scale (set by one large scalar): every per-scalar check passes
    values = [4.0] + [rng.uniform(-1.0, 1.0) for _ in range(255)]
    always = VerificationPolicy(DetectionTarget(0.02, 1, 0.9))  # 114 scalars, as FO audits
    oracle = Oracle(values)
    cheat, honest = _quantized(values, up=True), _quantized(values, up=False)
    key = next(bytes([b]) * 16 for b in range(256)
               if choose_sample(bytes([b]) * 16, cheat, always).audited)
    result = verify_contribution(cheat, oracle, secret=key, local_steps=4, policy=always)
    assert result.verified is False and result.mismatches == ()
    assert result.rounding_bias is not None and "rounding biased upward" in result.reason
    fair = verify_contribution(honest, oracle, secret=key, local_steps=4, policy=always)
    assert fair.verified is True and fair.rounding_bias is None
