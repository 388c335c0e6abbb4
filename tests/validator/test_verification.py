"""Stage 2 against real work: node's GPT on the synthetic task, honest and cheating miners."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from node.honest_miner import HonestMiner
from protocol.codecs import Codec
from protocol.identity import NodeKey
from protocol.layout import ParamLayout
from protocol.messages import Contribution
from protocol.model_hash import model_hash
from protocol.perturb import DirectionSpec, direction
from protocol.quantize import SIGN_BIT, admissible_codes, quantize
from protocol.randomness import round_beacon
from training.model import GPT, GPTConfig
from training.recompute import ScalarRecomputer
from training.round_context import RoundContext
from training.tasks import make_task
from training.trainable import TrainableSpec, prepare_trainable
from training.work import (
    RoundInfo,
    WorkConfig,
    concat_batches,
    do_work,
    local_adamw_delta,
    zo_scalars,
)
from validator.verification import (
    DetectionTarget,
    FabricationProof,
    Tolerance,
    VerificationPolicy,
    VerificationResult,
    check_scalar,
    check_scalars,
    choose_sample,
    confirm_fabrication,
    contribution_cost,
    fabrication_proof,
    verify_contribution,
    zo_noise_floor,
)

NET = "verify-test"
K = 32
SECRET = b"validator-secret-0123456789abcdef"
# 8 of the K = 32 scalars: a 20 % fabrication caught in one audit with probability 0.8.
AUDIT_ALL = VerificationPolicy(DetectionTarget(0.2, 1, 0.8), min_sample=4, fo_audit_probability=1.0)


@dataclass
class World:
    ctx: RoundContext
    miners: list[HonestMiner]
    oracle: ScalarRecomputer


def build_world(codec: Codec, round_index: int = 3, *, width: int = 32, context: int = 16,
                samples: int = 8, heads: int = 2, trainable: str = "lora:2") -> World:
    """A small model at round ``round_index`` (the slow test uses the calibration's size)."""
    task = make_task("synthetic", context=context, seed=0)
    model = GPT(GPTConfig(vocab_size=task.vocab_size, context=context, width=width, depth=2,
                          heads=heads), seed=1)
    named = prepare_trainable(model, TrainableSpec.parse(trainable), seed=1)
    model.eval()
    miners = [HonestMiner(NodeKey.from_bytes(bytes([40 + i]) * 32)) for i in range(3)]
    work = WorkConfig(codec=codec, scalars=K, direction=DirectionSpec(), spsa_eps=1e-3,
                      local_steps=4, local_lr=3e-3, local_weight_decay=0.0)
    base = model_hash(named)
    ctx = RoundContext(
        network_id=NET, round_index=round_index,
        beacon=round_beacon(NET, round_index), base_model_hash=base, model=model,
        named=named, task=task, miner_keys=[m.key.public.raw for m in miners],
        samples_per_miner=samples, work=work,
    )
    return World(ctx, miners, ScalarRecomputer(ctx))


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny matmuls gain nothing from threads, and spin-waiting threads stall on a busy host."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def zo() -> World:
    world = build_world(Codec.ZO)
    _advance(world)  # LoRA B starts at zero; move off it so every tensor has a gradient
    return world


@pytest.fixture(scope="module")
def fo() -> World:
    return build_world(Codec.FO)


def _advance(world: World) -> None:
    """Move off the init along a canonical direction: bit-identical in every process (a few
    AdamW steps would not be: Adam's sign-like first step flips with the thread count)."""
    ctx = world.ctx
    step = direction(2024, ParamLayout.of(ctx.named), DirectionSpec())
    with torch.no_grad():
        for (_, p), z in zip(ctx.named, step, strict=True):
            p.add_(z.mul_(0.05))
    base = model_hash(ctx.named)
    world.ctx = dataclasses.replace(
        ctx, base_model_hash=base, beacon=round_beacon(NET, ctx.round_index)
    )
    world.oracle = ScalarRecomputer(world.ctx)


def honest(world: World, miner: int = 0) -> Contribution:
    world.miners[miner].work(world.ctx)
    last = world.miners[miner].last
    assert last is not None
    return last.contribution


def verify(world: World, c: Contribution) -> VerificationResult:
    absolute = 0.0
    if c.codec == "zo":
        absolute = zo_noise_floor(world.oracle.assigned_loss(c), world.ctx.work.spsa_eps)
    return verify_contribution(c, world.oracle, secret=SECRET, local_steps=4, policy=AUDIT_ALL,
                               absolute=absolute)


def with_scalars(c: Contribution, scalars: Sequence[float], world: World) -> Contribution:
    key = world.ctx.seeds(c.sender)[0]
    q = quantize(scalars, key)
    return dataclasses.replace(c, scale=q.scale, codes=q.codes)


# --- honest work passes -------------------------------------------------------------------

@pytest.mark.parametrize("codec", ["zo", "fo"])
def test_honest_contribution_passes(codec: str, zo: World, fo: World) -> None:
    world = zo if codec == "zo" else fo
    for miner in range(3):
        result = verify(world, honest(world, miner))
        assert result.verified is True, result.reason
        assert len(result.checked) == 8 and not result.penalize


def test_honest_scalars_with_measured_float_noise_pass(zo: World, fo: World) -> None:
    """Noise beyond the worst measured (4 loss ulps for ZO; 1 % relative, 5x, for FO)."""
    rng = random.Random(0)
    tol = AUDIT_ALL.tolerance
    for world, relative, ulps in ((zo, 0.0, 4.0), (fo, 0.01, 0.0)):
        c = honest(world)
        last = world.miners[0].last
        assert last is not None
        indices = list(range(K))
        loss = world.oracle.assigned_loss(c)
        floor = zo_noise_floor(loss, world.ctx.work.spsa_eps, ulps)  # ~4 ulps were measured
        noisy = [v * (1 + rng.choice((-1, 1)) * relative) + rng.choice((-1, 1)) * floor
                 for v in last.raw_scalars]
        # ZO is checked against the 8-ulp noise floor alone (no relative part)
        band = Tolerance(0.0, 0.0, zo_noise_floor(loss, world.ctx.work.spsa_eps)) \
            if c.codec == "zo" else tol
        assert check_scalars(c, indices, noisy, band) == []


# --- cheaters fail -----------------------------------------------------------------------

def _fails(world: World, c: Contribution, *, most: bool = True) -> VerificationResult:
    """Rejected (one mismatch suffices); gross fabrications miss on most checked scalars."""
    result = verify(world, c)
    assert result.verified is False and result.penalize
    if most:
        assert len(result.mismatches) >= len(result.checked) // 2, result.reason
    return result


@pytest.mark.parametrize("codec", ["zo", "fo"])
def test_noise_fails(codec: str, zo: World, fo: World) -> None:
    world = zo if codec == "zo" else fo
    c = honest(world)
    rng = random.Random(1)
    _fails(world, with_scalars(c, [rng.gauss(0.0, c.scale / 2) for _ in range(K)], world))


@pytest.mark.parametrize("codec", ["zo", "fo"])
@pytest.mark.parametrize("factor", [2.0, 0.5, 1.25])
def test_scaled_fails(codec: str, factor: float, zo: World, fo: World) -> None:
    world = zo if codec == "zo" else fo
    c = honest(world)
    # x1.25 is within reach of the band for the smallest scalars: caught, but not on most.
    _fails(world, dataclasses.replace(c, scale=c.scale * factor), most=factor != 1.25)


@pytest.mark.parametrize("codec", ["zo", "fo"])
def test_sign_flip_fails(codec: str, zo: World, fo: World) -> None:
    world = zo if codec == "zo" else fo
    c = honest(world)
    flipped = bytes(code ^ SIGN_BIT if code else 0 for code in c.codes)
    _fails(world, dataclasses.replace(c, codes=flipped))


@pytest.mark.parametrize("codec", ["zo", "fo"])
def test_copycat_fails(codec: str, zo: World, fo: World) -> None:
    """Miner 1 re-signs miner 0's scalars: its own seeds differ, so the values do not fit."""
    world = zo if codec == "zo" else fo
    stolen = honest(world, 0)
    own = honest(world, 1)
    copied = dataclasses.replace(own, scale=stolen.scale, codes=stolen.codes,
                                 block_counts=stolen.block_counts)
    _fails(world, copied)


def test_free_rider_fails(zo: World) -> None:
    c = honest(zo)
    _fails(zo, dataclasses.replace(c, scale=0.0, codes=bytes(K)))


def test_wrong_batch_fails(zo: World) -> None:
    """Lazy: the right seeds on data the protocol did not assign."""
    ctx = zo.ctx
    c = honest(zo)
    batch = ctx.task.train_batch(range(5000, 5008))
    seeds = ctx.seeds(c.sender)
    _fails(zo, with_scalars(c, zo_scalars(ctx.model, ctx.named, batch, seeds, 1e-3,
                                          ctx.work.direction), zo))


def test_old_model_fails(zo: World) -> None:
    """Desynced: the right seeds and data on the model of a few rounds ago, declared current."""
    ctx = zo.ctx
    c = honest(zo)
    saved = [p.detach().clone() for _, p in ctx.named]
    batches = [ctx.task.train_batch(range(2000 + 8 * i, 2008 + 8 * i)) for i in range(4)]
    delta = local_adamw_delta(ctx.model, ctx.named, batches, 3e-2, 0.0)
    try:
        with torch.no_grad():
            for (_, p), d in zip(ctx.named, delta, strict=True):
                p.add_(d)  # one large step back along a real update
        batch = concat_batches([ctx.task.train_batch(ctx.assigned_samples(c.sender))])
        stale = zo_scalars(ctx.model, ctx.named, batch, ctx.seeds(c.sender), 1e-3,
                           ctx.work.direction)
    finally:
        with torch.no_grad():
            for (_, p), s in zip(ctx.named, saved, strict=True):
                p.copy_(s)
    _fails(zo, with_scalars(c, stale, zo))


def test_fo_wrong_batch_fails(fo: World) -> None:
    ctx = fo.ctx
    c = honest(fo)
    info = RoundInfo(NET, ctx.round_index, ctx.base_model_hash, tuple(ctx.seeds(c.sender)))
    batches = [ctx.task.train_batch(range(7000 + 2 * i, 7002 + 2 * i)) for i in range(4)]
    key = fo.miners[0].key
    lazy = do_work(key, ctx.model, ctx.named, batches, info, ctx.work, sequence=99)
    _fails(fo, lazy.contribution)


# --- the sample ---------------------------------------------------------------------------

def _contribution(sender: bytes, round_index: int = 7, codec: str = "zo") -> Contribution:
    return Contribution(
        network_id=NET, round_index=round_index, sender=sender, sequence=1,
        base_model_hash=bytes(32), codec=codec, direction="gaussian", rank=1,
        block_counts=() if codec == "zo" else (256,), scale=1.0, codes=bytes(256), compute_ms=0,
    )


def test_sample_is_deterministic_with_the_secret_and_unpredictable_without() -> None:
    policy = VerificationPolicy()
    c = _contribution(b"\x01" * 32)
    first = choose_sample(SECRET, c, policy)
    assert first == choose_sample(SECRET, c, policy)
    assert first.audited and len(first.indices) == 19 == len(set(first.indices))
    samples = {choose_sample(bytes([i]) * 32, c, policy).indices for i in range(20)}
    assert len(samples) == 20  # every secret picks a different subset
    others = {choose_sample(SECRET, _contribution(bytes([i]) * 32), policy).indices
              for i in range(2, 12)}
    rounds = {choose_sample(SECRET, _contribution(b"\x01" * 32, r), policy).indices
              for r in range(10)}
    assert len(others) == 10 and len(rounds) == 10
    # Index coverage: over many secrets every index is drawn about equally (19/256 each).
    hits = [0] * 256
    for i in range(400):
        for j in choose_sample(i.to_bytes(2, "big") * 16, c, policy).indices:
            hits[j] += 1
    assert min(hits) > 5 and max(hits) < 60  # mean 30; a miner cannot guess a safe subset


def test_fo_audit_rate_is_secret_and_close_to_its_probability() -> None:
    policy = VerificationPolicy(fo_audit_probability=0.1)
    audited = [choose_sample(SECRET, _contribution(i.to_bytes(2, "big") * 16, codec="fo"),
                             policy).audited for i in range(2000)]
    assert 150 <= sum(audited) <= 250  # binomial(2000, 0.1): mean 200, sd 13.4
    c = _contribution(b"\x05" * 32, codec="fo")
    assert {choose_sample(s.to_bytes(2, "big") * 16, c, policy).audited
            for s in range(50)} == {True, False}


# --- cost ----------------------------------------------------------------------------------

def test_cost_fractions() -> None:
    zo_cost = contribution_cost("zo", 256, 16, 4, audited=True)
    assert zo_cost.fraction == pytest.approx(16 / 256) and zo_cost.forward_passes == 32
    fo_cost = contribution_cost("fo", 256, 16, 4, audited=True)
    assert fo_cost.fraction == 1.0 and fo_cost.direction_fraction == pytest.approx(16 / 256)
    assert contribution_cost("fo", 256, 0, 4, audited=False).fraction == 0.0
    policy = VerificationPolicy()
    expected_fo = policy.fo_audit_probability * fo_cost.fraction
    assert expected_fo <= 0.1 and zo_cost.fraction <= 0.1


def test_unaudited_fo_is_not_judged(fo: World) -> None:
    policy = VerificationPolicy(fo_audit_probability=0.0)
    c = honest(fo)
    result = verify_contribution(c, fo.oracle, secret=SECRET, local_steps=4, policy=policy)
    assert result.verified is None and not result.penalize and result.cost.forward_passes == 0


# --- honest float noise across thread counts (separate processes) --------------------------

# Big enough that 1 and 2 threads reduce in different orders (smaller models came out bitwise
# equal on the calibration machine).
SIZE: dict[str, Any] = {"width": 64, "context": 32, "samples": 16, "heads": 4,
                        "trainable": "full"}
_SUBPROCESS = """
import json, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from protocol.codecs import Codec
from tests.validator.test_verification import SIZE, build_world, honest, _advance
out = {}
for codec in (Codec.ZO, Codec.FO):
    world = build_world(codec, **SIZE)
    if codec is Codec.ZO:
        _advance(world)
    c = honest(world)
    raw = world.miners[0].last.raw_scalars
    out[codec.value] = {"scale": c.scale, "codes": c.codes.hex(), "raw": raw}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_contributions_from_other_thread_counts_verify() -> None:
    runs = {}
    for threads in (1, 2):
        done = subprocess.run([sys.executable, "-c", _SUBPROCESS, str(threads)], check=True,
                              capture_output=True, text=True, timeout=300)
        runs[threads] = json.loads(done.stdout)
    for codec in (Codec.ZO, Codec.FO):
        world = build_world(codec, **SIZE)
        if codec is Codec.ZO:
            _advance(world)
        local = honest(world)
        for threads, run in runs.items():
            c = dataclasses.replace(local, scale=run[codec.value]["scale"],
                                    codes=bytes.fromhex(run[codec.value]["codes"]))
            result = verify(world, c)
            assert result.verified is True, (codec, threads, result.reason)
            last = world.miners[0].last
            assert last is not None
            diffs = [abs(a - b) for a, b in zip(run[codec.value]["raw"], last.raw_scalars,
                                                strict=True)]
            assert math.isfinite(max(diffs))


def _misses(codes: bytes, sample: Sequence[int], recomputed: Sequence[float], scale: float,
            key: int, tol: Tolerance) -> int:
    reference = max(abs(v) for v in recomputed)
    return sum(check_scalar(i, codes[i], recomputed[i], scale,
                            tol.band(recomputed[i], reference), key) is not None for i in sample)


def test_a_miner_that_always_rounds_up_is_caught() -> None:
    """The coins are reproducible from the key, so the rounding direction is checked too: with
    a band like the measured FO noise, 16 sampled scalars catch a round-up miner every time."""
    rng = random.Random(3)
    tol = Tolerance(relative=0.003, of_reference=0.002)
    honest_failed = caught = 0
    trials = 50
    for _ in range(trials):
        values = [rng.gauss(0.0, 1.0) for _ in range(256)]
        key = rng.randrange(2**63)
        q = quantize(values, key)
        up = bytes(max(admissible_codes(v, q.scale), key=lambda c: c & 0x7F) for v in values)
        recomputed = [v * (1.0 + rng.uniform(-1e-4, 1e-4)) for v in values]
        reference = max(abs(v) for v in recomputed)
        sample = rng.sample(range(256), 16)

        honest_failed += _misses(q.codes, sample, recomputed, q.scale, key, tol) > 0
        caught += _misses(up, sample, recomputed, q.scale, key, tol) > 0
        # Without the key (either neighbour accepted) rounding up always passes.
        assert all(check_scalar(i, up[i], recomputed[i], q.scale,
                                tol.band(recomputed[i], reference)) is None for i in sample)
    assert honest_failed == 0
    assert caught >= 0.9 * trials


# --- the rounding direction (issue 15, item 8) ---------------------------------------------

def round_up(c: Contribution, raw: Sequence[float]) -> Contribution:
    """``c`` with every magnitude rounded up to the next level instead of by its coin."""
    from protocol.quantize import TOP_CODE, levels

    table = levels(c.scale)
    codes = bytearray()
    for v in raw:
        low = max(i for i, level in enumerate(table) if level <= abs(v))
        up = low if low == TOP_CODE or table[low] == abs(v) else low + 1
        codes.append(up | SIGN_BIT if up and v < 0 else up)
    return dataclasses.replace(c, codes=bytes(codes))


def test_zo_rounding_check_catches_an_always_round_up_quantizer(zo: World) -> None:
    """It differs from the honest coins on about half of its codes, and the ZO band (8 loss
    ulps, no relative part) is narrower than the gap between levels: most of those differences
    are caught. Under the old band (3 % relative + 2 % of the largest + 32 ulps) under 1 % of
    them were. The honest sender's own codes never fail."""
    world = zo
    everything = VerificationPolicy(DetectionTarget(0.5, 1, 1 - 1e-12))  # all K scalars
    for miner in range(3):
        c = honest(world, miner)
        last = world.miners[miner].last
        assert last is not None
        cheat = round_up(c, last.raw_scalars)
        differing = sum(a != b for a, b in zip(cheat.codes, c.codes, strict=True))
        assert differing >= K // 4
        absolute = zo_noise_floor(world.oracle.assigned_loss(c), world.ctx.work.spsa_eps)
        result = verify_contribution(cheat, world.oracle, secret=SECRET, local_steps=4,
                                     policy=everything, absolute=absolute)
        assert result.verified is False and len(result.mismatches) >= differing // 4
        old = check_scalars(cheat, range(K), world.oracle.recompute(cheat, range(K)),
                            Tolerance(0.03, 0.02, zo_noise_floor(
                                world.oracle.assigned_loss(c), world.ctx.work.spsa_eps, 32.0)))
        assert len(old) <= 1  # measured: 0 of 15, 8 and 15 (now 8, 5 and 5)
        assert verify_contribution(c, world.oracle, secret=SECRET, local_steps=4,
                                   policy=everything, absolute=absolute).verified is True


def test_a_fabrication_proof_is_confirmed_by_anyone_with_the_model(zo: World) -> None:
    from protocol.signing import seal

    world = zo
    c = honest(world, 1)
    last = world.miners[1].last
    assert last is not None
    key = world.miners[1].key
    absolute = zo_noise_floor(world.oracle.assigned_loss(c), world.ctx.work.spsa_eps)
    cheat = round_up(c, last.raw_scalars)
    result = verify_contribution(cheat, world.oracle, secret=SECRET, local_steps=4,
                                 policy=AUDIT_ALL, absolute=absolute)
    proof = fabrication_proof(seal(cheat, key), result)
    assert proof is not None and proof.indices == tuple(m.index for m in result.mismatches)
    checker = ScalarRecomputer(world.ctx)  # another validator's own recomputation
    assert confirm_fabrication(proof, checker, network_id=NET, absolute=absolute)
    # The honest contribution at the same indices, or a forged envelope, proves nothing.
    framed = dataclasses.replace(proof, envelope=seal(c, key))
    assert not confirm_fabrication(framed, checker, network_id=NET, absolute=absolute)
    flipped = proof.envelope[:-1] + bytes([proof.envelope[-1] ^ 1])
    forged = dataclasses.replace(proof, envelope=flipped)
    assert not confirm_fabrication(forged, checker, network_id=NET, absolute=absolute)
    assert fabrication_proof(seal(c, key), verify(world, c)) is None
    with pytest.raises(Exception, match="one value and band"):
        FabricationProof(proof.envelope, (), (), ())
