"""Stage 2: verification by recomputation of a secret sample of a contribution's scalars.

Seeds and data are assigned by the protocol, so a validator can redo any scalar of any miner.
Which indices it redoes comes from its own secret, the round and the miner
(``protocol.randomness.validator_sample_key``): a miner cannot tell which scalars will be checked
and has to compute all of them honestly. A sampled scalar passes iff its one-byte code is one an
honest ``quantize`` could have produced for *some* value within the tolerance band around the
recomputed value, rounded with the coins an honest quantizer draws (they are keyed by the
contribution's first seed); any failing scalar rejects the whole contribution (a penalty
signal). The coins make the rounding direction checkable only where the whole band lies on one
side of a scalar's coin threshold, i.e. where the band is narrower than the gap between code
levels (9 % of the value): hence ZO's band below, without which an always-round-up sender
(wrong on about half its codes) failed on under 1 % of them. How many scalars are checked
follows from a stated detection target (``DetectionTarget``, ``detection_sample_size``).

Tolerance, and the measurement behind it
----------------------------------------
Recomputation is not bit-exact across machines: thread counts and kernels change the order of
float32 reductions. Measured with ``node``'s GPT (width 64, depth 2, 4 heads, context 32) on the
synthetic task, batch of 16 samples, K = 64 seeds, eps = 1e-3, FO with H = 4 AdamW steps at lr
3e-3, from one identical starting model; the same contribution recomputed with 1 vs 2 torch
threads (separate processes) and with the samples of each batch in reverse order (a stand-in
for the different reduction orders of other CPUs' kernels):

=========  =====  ============  ==================  ===================  =================
trainable  codec  1 vs 2 thr.   reversed: max abs   max abs / scale      max relative
=========  =====  ============  ==================  ===================  =================
lora:4     ZO     bit-equal     1.2e-4              1.8e-3               7e-2 (tiny values)
full       ZO     bit-equal     8.9e-5              7.9e-5               8.9e-3
lora:4     FO     bit-equal     1.7e-7              1.5e-6               7.5e-6
full       FO     1.3e-5        8.8e-5              3.1e-4               1.9e-3
=========  =====  ============  ==================  ===================  =================

ZO noise is absolute: each loss carries a few float32 ulps of rounding (here 3.4 ulps of the loss
over 2ε at most), whatever the scalar's size, hence the large relative error of tiny scalars.
FO noise is roughly relative. Beware that a few AdamW steps taken with different thread counts
*before* the round amplified to a different model altogether (Adam's sign-like first step
flips on near-zero gradients): the certified model must be the same bits, which the protocol
guarantees. The FO band is

    tol(v) = relative·|v| + of_reference·max|recomputed sample| + absolute,

with defaults ``relative = 0.03`` and ``of_reference = 0.02`` (about 15x and 10x the worst FO and
ZO noise measured here: margin for kernels we could not measure, other SIMD widths or GPUs;
disable TF32 when verifying on a GPU). ZO recomputation is bit-exact on one machine (1 vs 2
threads above) and its noise under another reduction order is absolute, so the ZO band has no
relative part: ``tol = zo_noise_floor(loss, eps)``, ``ZO_EXACT_ULPS = 8`` float32 ulps of the
loss over 2ε (2.4x the worst measured), which also keeps a nearly converged model, whose
scalars shrink towards the rounding noise, from failing honest miners, and is narrower than
the level gap on most scalars, so the owed rounding direction is decisive there. Every part is
computed by the validator; nothing the miner declares (its scale, say) widens the band.

What the FO band lets through: the code levels are 2^(1/8) (9 %) apart, so a scalar set scaled
by λ is caught once λ leaves roughly [0.88, 1.13]; sign flips, noise, another miner's scalars,
another batch's, or a clearly older model's, are caught on almost every scalar. A model one small
step older can produce scalars within the band. Measured (ZO, lora:2, 8 of 32 scalars checked,
the model moved back by 4 AdamW steps): a tenth of an FO round (lr 3e-4) passed, a third
(lr 1e-3) failed 3 of 8 scalars, a full round (lr 3e-3) 4 of 8; one failure rejects. Work that
stale is nearly as useful, and the sync filter rejects any declared base hash but the current.

FO block counts are taken as declared (the oracle projects with them): an allocation other
than ``allocate_blocks``'s still reconstructs the sender's own update without bias on the blocks
it covers, so misallocating only weakens the sender's own contribution.

Cost, as a fraction of the miner's compute
------------------------------------------
* ZO: the miner spends 2 forward passes per scalar (2K), the validator 2 per checked scalar:
  ``n / K`` with ``n = max(min_sample, detection_sample_size(f, R, p))``, 19 by default (a 2 %
  fabrication caught within 8 rounds with probability 0.95): 1.9 % at K = 1024, 7.4 % at
  K = 256 (the old 16 of 256 measured 6.7 % of the miner's wall time, single-threaded).
* FO: a scalar is a projection of the whole local update, so checking any of them means redoing
  the H local steps once (forward + backward, counted as 3 forward passes each) plus n of the K
  projections: about 100 % of the miner's compute per audited contribution (measured: 69 % of
  the miner's wall time at K = 256, the rest being the K - n projections not redone). Hence the
  audit rate: once past probation an FO contribution is audited with a probability that rises
  with the miner's share of the reward at stake, at least ``FO_AUDIT_PROBABILITY`` (5 %;
  ``validator.trust``), decided by the same secret key; its reward is held until a passed
  audit, which makes cheating unprofitable in expectation (docs/architecture.md, "Audits a
  cheater cannot outwait").
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from protocol.errors import ConfigError, MessageRejected
from protocol.messages import Contribution
from protocol.quantize import SIGN_BIT, TOP_CODE, admissible_codes, expected_codes, levels
from protocol.randomness import (
    derive_seed,
    keyed_hash,
    round_beacon,
    validator_sample_key,
    verification_sample,
)
from protocol.signing import open_envelope

FLOAT32_EPSILON = 2.0**-23
_PERSON_AUDIT = b"ss:audit"
BACKWARD_FORWARD_RATIO = 2  # a backward pass costs about two forward passes
FO_AUDIT_PROBABILITY = 0.05  # trusted FO miners' floor; the one rate (validator.trust uses it too)
ZO_EXACT_ULPS = 8.0
"""The ZO band, in float32 ulps of the loss over 2ε (see the module doc: bit-exact on one
machine, 3.4 ulps at worst when the reduction order changes)."""


class ScalarOracle(Protocol):
    """Recomputes scalars; implemented where the model and the task live (not in validator/)."""

    def recompute(self, contribution: Contribution, indices: Sequence[int]) -> list[float]:
        """The raw (unquantized) scalars at ``indices``, recomputed on the sender's assigned
        data for the round's certified model, exactly as an honest sender computes them."""
        ...


@dataclass(frozen=True)
class Tolerance:
    """``tol(v) = relative·|v| + of_reference·reference + absolute``; see the module doc."""

    relative: float = 0.03
    of_reference: float = 0.02
    absolute: float = 0.0

    def __post_init__(self) -> None:
        for name in ("relative", "of_reference", "absolute"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ConfigError(f"tolerance {name} must be finite and >= 0, got {value}")

    def band(self, value: float, reference: float) -> float:
        """Half-width of the accepted interval around ``value``."""
        return self.relative * abs(value) + self.of_reference * reference + self.absolute


def zo_noise_floor(loss: float, eps: float, ulps: float = ZO_EXACT_ULPS) -> float:
    """Absolute float noise of a ZO scalar: ``ulps`` float32 roundings of ``loss`` over 2ε."""
    if not (math.isfinite(loss) and math.isfinite(eps) and eps > 0.0 and ulps >= 0.0):
        raise ConfigError(f"need a finite loss, eps > 0 and ulps >= 0, got {loss}, {eps}, {ulps}")
    return ulps * abs(loss) * FLOAT32_EPSILON / (2.0 * eps)


def detection_sample_size(rate: float, rounds: int, probability: float) -> int:
    """The fewest scalars an audit must recompute so that a sender fabricating a fraction
    ``rate`` of its scalars in every round is caught within ``rounds`` audited rounds with
    probability at least ``probability``: ``n >= ln(1 - p) / (R · ln(1 - f))``.

    Each sampled scalar misses the fabrication with probability ``1 - f`` (at most: the sample
    is drawn without replacement, which only helps), so ``R`` audits of ``n`` scalars all miss
    with probability ``(1 - f)^(nR) <= 1 - p``.
    """
    if not (0.0 < rate < 1.0 and 0.0 < probability < 1.0) or rounds < 1:
        raise ConfigError(f"need 0 < rate < 1, 0 < probability < 1 and rounds >= 1, got "
                          f"{rate}, {probability}, {rounds}")
    return math.ceil(math.log1p(-probability) / (rounds * math.log1p(-rate)) - 1e-9)


@dataclass(frozen=True)
class DetectionTarget:
    """A stated audit guarantee: a sender fabricating a fraction ``rate`` of its scalars is
    caught within ``rounds`` audited rounds with probability ``probability``."""

    rate: float = 0.02
    rounds: int = 8
    probability: float = 0.95

    def __post_init__(self) -> None:
        detection_sample_size(self.rate, self.rounds, self.probability)  # checks the values

    @property
    def sample_size(self) -> int:
        return detection_sample_size(self.rate, self.rounds, self.probability)

    def caught_within(self, rounds: int, scalars: int, checked: int) -> float:
        """Probability that ``rounds`` audits of ``checked`` of ``scalars`` scalars see at
        least one of the ``ceil(rate·scalars)`` fabricated ones (exact, without replacement)."""
        bad = math.ceil(self.rate * scalars)
        miss = math.comb(scalars - bad, checked) / math.comb(scalars, checked)
        return 1.0 - miss**rounds


@dataclass(frozen=True)
class VerificationPolicy:
    """How much of each contribution is checked, and how strictly.

    ``detection`` sizes every audit's sample (``detection_sample_size``; at least
    ``min_sample``, at most the contribution's K). ``tolerance`` is the band of FO
    recomputation (not bit-exact across machines: relative); ZO recomputation is bit-exact up
    to a few ulps of the loss, so ZO scalars are checked against ``zo_ulps`` ulps only
    (``zo_noise_floor``), which is what makes the rounding-direction check bite.
    """

    detection: DetectionTarget = DetectionTarget()
    min_sample: int = 4
    zo_audit_probability: float = 1.0
    fo_audit_probability: float = FO_AUDIT_PROBABILITY
    tolerance: Tolerance = Tolerance()
    zo_ulps: float = ZO_EXACT_ULPS

    def __post_init__(self) -> None:
        for name in ("zo_audit_probability", "fo_audit_probability"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ConfigError(f"{name} must lie in [0, 1], got {value}")
        if self.min_sample < 1:
            raise ConfigError("min_sample must be >= 1")
        if not (math.isfinite(self.zo_ulps) and self.zo_ulps > 0.0):
            raise ConfigError(f"zo_ulps must be finite and > 0, got {self.zo_ulps}")

    def sample_size(self, scalars: int) -> int:
        """How many of ``scalars`` scalars an audit recomputes."""
        return min(scalars, max(self.min_sample, self.detection.sample_size))

    def audit_probability(self, codec: str) -> float:
        return self.zo_audit_probability if codec == "zo" else self.fo_audit_probability

    def tolerance_for(self, codec: str) -> Tolerance:
        """The band's relative parts for ``codec`` (ZO's absolute part is the noise floor)."""
        return Tolerance(0.0, 0.0, self.tolerance.absolute) if codec == "zo" else self.tolerance


@dataclass(frozen=True)
class SampleChoice:
    """Whether a contribution is audited this round, and which scalar indices."""

    audited: bool
    indices: tuple[int, ...]


def audit_draw(sample_key: bytes) -> float:
    """A uniform in [0, 1) fixed by the validator's sample key (independent of the indices)."""
    word = int.from_bytes(keyed_hash(sample_key, _PERSON_AUDIT, b"", size=8), "little")
    return word / 2.0**64


def choose_sample(
    secret: bytes, contribution: Contribution, policy: VerificationPolicy
) -> SampleChoice:
    """The secret, deterministic choice of what to check in ``contribution``."""
    key = validator_sample_key(secret, contribution.round_index, contribution.sender)
    if audit_draw(key) >= policy.audit_probability(contribution.codec):
        return SampleChoice(audited=False, indices=())
    k = contribution.scalars
    return SampleChoice(True, tuple(verification_sample(key, k, policy.sample_size(k))))


@dataclass(frozen=True)
class Mismatch:
    """A checked scalar whose code no value within the band could have produced."""

    index: int
    code: int
    recomputed: float
    band: float
    why: str


@dataclass(frozen=True)
class VerificationCost:
    """Work of one verification next to the miner's work on the same contribution.

    Passes are forward-pass equivalents (a backward pass counts as two); directions are the
    random directions regenerated (ZO perturbations or FO projections).
    """

    forward_passes: int
    directions: int
    miner_forward_passes: int
    miner_directions: int

    @property
    def fraction(self) -> float:
        """Verifier forward passes / miner forward passes."""
        return self.forward_passes / self.miner_forward_passes if self.miner_forward_passes else 0.0

    @property
    def direction_fraction(self) -> float:
        return self.directions / self.miner_directions if self.miner_directions else 0.0


def contribution_cost(codec: str, scalars: int, checked: int, local_steps: int,
                      audited: bool) -> VerificationCost:
    """The cost model of the module docstring."""
    if codec == "zo":
        miner = 2 * scalars
        spent = 2 * checked
    else:
        miner = (1 + BACKWARD_FORWARD_RATIO) * local_steps
        spent = miner if audited else 0
    return VerificationCost(spent, checked, miner, scalars)


@dataclass(frozen=True)
class VerificationResult:
    """Outcome of stage 2 for one contribution. ``verified`` None: not audited this round."""

    verified: bool | None
    checked: tuple[int, ...]
    mismatches: tuple[Mismatch, ...]
    cost: VerificationCost
    rounding_bias: float | None = None
    """When the sample's rounding directions failed the bias test (``rounding_bias``): its
    score, in standard deviations above what the protocol's coins give."""

    @property
    def penalize(self) -> bool:
        """True when the contribution was caught: reject it and penalize its sender."""
        return self.verified is False

    @property
    def reason(self) -> str:
        if self.verified is None:
            return "not audited"
        if self.verified:
            return f"{len(self.checked)} scalars match"
        if not self.mismatches:
            return f"rounding biased upward over {len(self.checked)} scalars " \
                   f"({self.rounding_bias:.1f} sd above the protocol's coins)"
        first = self.mismatches[0]
        return f"{len(self.mismatches)}/{len(self.checked)} scalars differ (#{first.index}: " \
               f"{first.why})"


def signed_level(code: int) -> int:
    """The code as a signed level index in [-127, 127]: monotone in the value it stands for."""
    magnitude = code & TOP_CODE
    return -magnitude if code & SIGN_BIT else magnitude


def admissible_range(low: float, high: float, scale: float) -> tuple[int, int]:
    """Signed level indices of the codes an honest quantizer could give a value in [low, high]."""
    lows = [signed_level(c) for c in admissible_codes(low, scale)]
    highs = [signed_level(c) for c in admissible_codes(high, scale)]
    return min(lows), max(highs)


def quantize_key(contribution: Contribution) -> int:
    """The key of the stochastic rounding coins an honest sender used: its first seed."""
    c = contribution
    beacon = round_beacon(c.network_id, c.round_index)
    return derive_seed(c.network_id, beacon, c.sender, c.round_index, 0)


def expected_range(
    low: float, high: float, scale: float, key: int, index: int
) -> tuple[int, int]:
    """Signed level indices of the codes an honest quantizer with ``key`` gives scalar ``index``
    for a value in [low, high]: a single level unless the interval straddles the coin's
    threshold (or crosses a level)."""
    codes = [signed_level(c) for c in expected_codes(low, high, scale, key, index)]
    return min(codes), max(codes)


def check_scalar(
    index: int, code: int, value: float, scale: float, band: float, key: int | None = None
) -> Mismatch | None:
    """None if ``code`` is what an honest quantizer gives some value in
    ``[value - band, value + band]``: with the coins of ``key`` when given (the rounding
    direction is then checked too), else either neighbouring level."""
    def miss(why: str) -> Mismatch:
        return Mismatch(index, code, value, band, why)

    if not math.isfinite(value):
        return miss("recomputed value is not finite")
    if scale == 0.0:
        return None if code == 0 and abs(value) <= band else miss("zero scale, nonzero value")
    if code == SIGN_BIT:
        return miss("invalid code 0x80")
    if abs(value) - band > scale:
        return miss(f"|value| exceeds the declared scale {scale:.4g}")
    if key is None:
        low, high = admissible_range(value - band, value + band, scale)
    else:
        low, high = expected_range(value - band, value + band, scale, key, index)
    if not low <= signed_level(code) <= high:
        return miss(f"code level {signed_level(code)} outside [{low}, {high}]")
    return None


def check_scalars(
    contribution: Contribution,
    indices: Sequence[int],
    recomputed: Sequence[float],
    tolerance: Tolerance,
) -> list[Mismatch]:
    """The sampled scalars whose transmitted codes disagree with the recomputed values."""
    if len(indices) != len(recomputed):
        raise ConfigError(f"{len(indices)} indices but {len(recomputed)} recomputed values")
    finite = [abs(v) for v in recomputed if math.isfinite(v)]
    reference = max(finite, default=0.0)
    key = quantize_key(contribution)
    mismatches = []
    for index, value in zip(indices, recomputed, strict=True):
        band = tolerance.band(value, reference) if math.isfinite(value) else 0.0
        found = check_scalar(index, contribution.codes[index], value, contribution.scale, band,
                             key)
        if found is not None:
            mismatches.append(found)
    return mismatches


@dataclass(frozen=True)
class FabricationProof:
    """Evidence that a sender fabricated scalars, checkable by anyone who holds the round's
    certified model (a validator quorum voting a slash, say): the sender's own signed
    contribution as received, and for each mismatched index the value an honest computation
    gives and the band it was checked with. ``confirm_fabrication`` re-checks it."""

    envelope: bytes
    indices: tuple[int, ...]
    recomputed: tuple[float, ...]
    bands: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.indices or not len(self.indices) == len(self.recomputed) == len(self.bands):
            raise ConfigError("a fabrication proof needs one value and band per index")


def fabrication_proof(envelope: bytes, result: VerificationResult) -> FabricationProof | None:
    """The proof of a failed verification of the contribution sealed in ``envelope``."""
    if not result.mismatches:
        return None
    m = result.mismatches
    return FabricationProof(envelope, tuple(x.index for x in m), tuple(x.recomputed for x in m),
                            tuple(x.band for x in m))


def confirm_fabrication(
    proof: FabricationProof, oracle: ScalarOracle, *, network_id: str,
    tolerance: Tolerance = Tolerance(), absolute: float = 0.0,
) -> bool:
    """True iff ``proof`` holds: the envelope is the sender's signature over a contribution,
    and recomputing the listed scalars on the round's model (``oracle``) finds codes that no
    honest quantizer gives under the checker's own band (``tolerance`` for FO, ``absolute``,
    the ZO noise floor, for ZO; never the band the accuser used). A validator that cannot
    confirm does not vote to slash."""
    try:
        signed = open_envelope(proof.envelope, network_id=network_id)
    except MessageRejected:
        return False
    c = signed.message
    if not isinstance(c, Contribution) or any(not 0 <= i < c.scalars for i in proof.indices):
        return False
    base = Tolerance(0.0, 0.0, tolerance.absolute) if c.codec == "zo" else tolerance
    band = Tolerance(base.relative, base.of_reference, base.absolute + absolute)
    recomputed = oracle.recompute(c, proof.indices)
    return len(check_scalars(c, proof.indices, recomputed, band)) == len(proof.indices)


def verify_contribution(
    contribution: Contribution,
    oracle: ScalarOracle,
    *,
    secret: bytes,
    local_steps: int,
    policy: VerificationPolicy = VerificationPolicy(),
    absolute: float = 0.0,
) -> VerificationResult:
    """Recompute the secret sample of ``contribution`` and compare codes (stage 2).

    ``contribution`` must have passed the stage-1 filters. ``local_steps`` is the network's FO
    local steps (what an audit costs to redo). ``absolute`` adds to the policy's
    absolute tolerance: pass ``zo_noise_floor(loss, eps)`` for ZO contributions when the loss
    on the sender's data is known.
    """
    choice = choose_sample(secret, contribution, policy)
    cost = contribution_cost(contribution.codec, contribution.scalars, len(choice.indices),
                             local_steps, choice.audited)
    if not choice.audited:
        return VerificationResult(None, (), (), cost)
    recomputed = oracle.recompute(contribution, choice.indices)
    base = policy.tolerance_for(contribution.codec)
    tolerance = Tolerance(base.relative, base.of_reference, base.absolute + absolute)
    mismatches = check_scalars(contribution, choice.indices, recomputed, tolerance)
    if mismatches:
        return VerificationResult(False, choice.indices, tuple(mismatches), cost)
    bias = rounding_bias(contribution, choice.indices, recomputed)
    if bias is not None and bias > BIAS_LIMIT_SD:
        return VerificationResult(False, choice.indices, (), cost, rounding_bias=bias)
    return VerificationResult(True, choice.indices, (), cost)


BIAS_LIMIT_SD = 6.0
"""How far above the coins' expectation a sample's count of rounded-up scalars may be."""
BIAS_MIN_SCALARS = 16
"""Fewer usable scalars than this: no bias test (too little evidence either way)."""


def rounding_bias(
    contribution: Contribution, indices: Sequence[int], recomputed: Sequence[float]
) -> float | None:
    """How many standard deviations the sample's upward roundings exceed what the protocol's
    coins give (None: too few usable scalars).

    Each scalar's magnitude lies between two levels; an honest quantizer takes the upper one
    with probability ``frac``, its position between them (the coin is keyed, so over the
    sample the choices are independent Bernoulli draws). The count of upper choices therefore
    has mean ``sum(frac)`` and variance ``sum(frac * (1 - frac))``. A sender that always rounds
    up (a larger, biased update that each scalar's band still admits when the recomputation is
    not bit-exact, as FO's is not) takes the upper level every time: about half the sample
    above the mean, many standard deviations for the sample sizes audits use. The recomputed
    value stands in for the sender's: a recomputation error of relative size ``e`` moves each
    ``frac`` by about ``e / 9 %``, far below the limit. Scalars whose code is neither bracket
    level (the recomputation fell across a level) are left out."""
    if contribution.scale == 0.0:
        return None
    table = levels(contribution.scale)
    ups = mean = var = 0.0
    usable = 0
    for index, value in zip(indices, recomputed, strict=True):
        magnitude = abs(value)
        if not math.isfinite(magnitude) or magnitude >= contribution.scale:
            continue
        hi = bisect.bisect_right(table, magnitude)
        lo = hi - 1
        code = contribution.codes[index] & TOP_CODE
        if code not in (lo, hi) or table[hi] == table[lo]:
            continue
        frac = (magnitude - table[lo]) / (table[hi] - table[lo])
        ups += code == hi
        mean += frac
        var += frac * (1.0 - frac)
        usable += 1
    if usable < BIAS_MIN_SCALARS:
        return None
    return (ups - mean) / math.sqrt(max(var, 0.25))
