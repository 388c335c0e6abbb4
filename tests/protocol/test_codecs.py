"""SPSA and projection codecs: exactness, statistics against theory, update terms.

Statistical assertions compare sample moments with their exact expectations, using a
tolerance of a few standard errors estimated from the same sample.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.apply import Update, apply_updates_
from protocol.codecs import (
    Codec,
    allocate_blocks,
    block_norms,
    contribution_updates,
    project_delta,
    seed_blocks,
    spsa_scalars,
)
from protocol.errors import ConfigError
from protocol.layout import ParamLayout
from protocol.perturb import DirectionKind, DirectionSpec, direction
from protocol.quantize import MAX_RELATIVE_ERROR, dequantize, quantize

GAUSSIAN = DirectionSpec()
KINDS = [GAUSSIAN, DirectionSpec(DirectionKind.RADEMACHER), DirectionSpec(DirectionKind.LOWRANK, 2)]
LAYOUT = ParamLayout(("w1", "bias", "w2"), ((10, 20), (300,), (5, 20)))  # d = 600


class Quadratic:
    """L(θ) = ½ θᵀAθ over the flattened tensors of LAYOUT, in float64."""

    def __init__(self, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        d = LAYOUT.numel
        m = torch.randn(d, d, generator=gen, dtype=torch.float64)
        self.a = m @ m.T / d + 0.5 * torch.eye(d, dtype=torch.float64)
        self.params = [torch.randn(s, generator=gen, dtype=torch.float64) for s in LAYOUT.shapes]

    def flat(self, tensors: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        return torch.cat([t.reshape(-1) for t in (tensors or self.params)])

    def loss(self) -> float:
        x = self.flat()
        return float(0.5 * x @ self.a @ x)

    def grad(self) -> torch.Tensor:
        return self.a @ self.flat()


def _zflat(seed: int, spec: DirectionSpec) -> torch.Tensor:
    return torch.cat([t.reshape(-1).double() for t in direction(seed, LAYOUT, spec)])


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()))


def _within(sample: Sequence[float], expected: float, sigmas: float = 4.0) -> bool:
    mean = statistics.fmean(sample)
    return abs(mean - expected) < sigmas * statistics.stdev(sample) / math.sqrt(len(sample))


# ---------------------------------------------------------------------------- SPSA


@pytest.mark.parametrize("spec", KINDS, ids=lambda s: s.kind.value)
def test_spsa_is_the_directional_derivative_on_a_quadratic(spec: DirectionSpec) -> None:
    # Central differences are exact for a quadratic, so only float64 rounding remains.
    q = Quadratic(0)
    grad = q.grad()
    seeds = list(range(100, 120))
    got = spsa_scalars(q.loss, q.params, LAYOUT, seeds, 1e-3, spec)
    for seed, g in zip(seeds, got, strict=True):
        exact = float(_zflat(seed, spec) @ grad)
        assert abs(g - exact) < 1e-8 * grad.norm().item()


def _averaged_spsa_moments(q: Quadratic, n: int, trials: int) -> tuple[list[float], list[float]]:
    grad = q.grad()
    dots, sq_norms, cosines = [], [], []
    for t in range(trials):
        seeds = [1_000_000 * n + 1000 * t + i for i in range(n)]
        gs = spsa_scalars(q.loss, q.params, LAYOUT, seeds, 1e-3, GAUSSIAN)
        est = (
            sum(
                (g * _zflat(s, GAUSSIAN) for s, g in zip(seeds, gs, strict=True)),
                torch.zeros_like(grad),
            )
            / n
        )
        dots.append(float(est @ grad) / float(grad @ grad))
        sq_norms.append(float(est @ est) / float(grad @ grad))
        cosines.append(_cos(est, grad))
    assert _within(dots, 1.0), "E[ĝ·∇L] = |∇L|² (unbiased)"
    assert _within(sq_norms, 1 + (LAYOUT.numel + 1) / n), "E|ĝ|² = |∇L|²(1 + (d+1)/N)"
    return dots, cosines


@pytest.mark.parametrize(("n", "trials"), [(25, 60), (100, 20), (400, 8)])
def test_averaged_spsa_cosine_matches_theory(n: int, trials: int) -> None:
    _, cosines = _averaged_spsa_moments(Quadratic(1), n, trials)
    theory = math.sqrt(n / (n + LAYOUT.numel))
    # The mean of a ratio is a little below the ratio of the means (Jensen): allow 8%.
    assert abs(statistics.fmean(cosines) / theory - 1) < 0.08


def test_params_restored_bit_exactly() -> None:
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    named = list(model.named_parameters())
    layout = ParamLayout.of(named)
    params = [p for _, p in named]
    before = [p.detach().clone() for p in params]
    x, y = torch.randn(32, 8), torch.randn(32, 1)

    def loss() -> float:
        return float(torch.nn.functional.mse_loss(model(x), y))

    for spec in KINDS:
        scalars = spsa_scalars(loss, params, layout, [7, 8, 9], 1e-2, spec)
        assert all(math.isfinite(g) and g != 0.0 for g in scalars)
        assert all(torch.equal(p, b) for p, b in zip(params, before, strict=True))
    calls = 0

    def failing_loss() -> float:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("boom")
        return loss()

    with pytest.raises(RuntimeError):
        spsa_scalars(failing_loss, params, layout, [1, 2], 1e-2, GAUSSIAN)
    assert all(torch.equal(p, b) for p, b in zip(params, before, strict=True))


def test_evaluation_points_are_saved_plus_rounded_step() -> None:
    # θ ± (ε·z rounded once) with a separate multiply and add: the same bits on every machine.
    torch.manual_seed(5)
    params = [torch.randn(s) for s in LAYOUT.shapes]
    seen: list[list[torch.Tensor]] = []

    def loss() -> float:
        seen.append([p.clone() for p in params])
        return float(sum(float(p.square().sum()) for p in params))

    spsa_scalars(loss, params, LAYOUT, [77], 1e-3, GAUSSIAN)
    eps32 = torch.tensor(1e-3, dtype=torch.float32)
    steps = [z * eps32 for z in direction(77, LAYOUT, GAUSSIAN)]
    assert len(seen) == 2
    for got, sign in zip(seen, (1.0, -1.0), strict=True):
        for g, p, st_ in zip(got, params, steps, strict=True):
            assert torch.equal(g, p + sign * st_)


def test_single_seed_recompute_is_bit_equal() -> None:
    # A validator recomputes sampled scalars one seed at a time.
    q = Quadratic(4)
    seeds = [11, 22, 33, 44]
    spec = DirectionSpec(DirectionKind.RADEMACHER)
    together = spsa_scalars(q.loss, q.params, LAYOUT, seeds, 1e-3, spec)
    alone = [spsa_scalars(q.loss, q.params, LAYOUT, [s], 1e-3, spec)[0] for s in seeds]
    assert together == alone


def test_spsa_rejects_bad_inputs() -> None:
    q = Quadratic(0)
    with pytest.raises(ConfigError):
        spsa_scalars(q.loss, q.params, LAYOUT, [1], 0.0, GAUSSIAN)
    with pytest.raises(ConfigError):
        spsa_scalars(q.loss, q.params[:2], LAYOUT, [1], 1e-3, GAUSSIAN)


# ---------------------------------------------------------------------- projection


def _delta(seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    # Different scales per block make the allocation matter.
    return [
        s * torch.randn(shape, generator=gen, dtype=torch.float64)
        for s, shape in zip((1.0, 0.3, 2.0), LAYOUT.shapes, strict=True)
    ]


def _reconstruct(
    delta: Sequence[torch.Tensor], seeds: Sequence[int], spec: DirectionSpec, counts: Sequence[int]
) -> torch.Tensor:
    """Δ̃ through the real pipeline: project, turn into update terms, apply to zeros."""
    gammas = project_delta(delta, LAYOUT, seeds, spec, counts)
    out = [torch.zeros(s, dtype=torch.float64) for s in LAYOUT.shapes]
    apply_updates_(
        out, LAYOUT, contribution_updates(Codec.FO, seeds, gammas, counts, -1.0, 1.0), spec
    )
    return torch.cat([t.reshape(-1) for t in out])


def _mean_error(spec: DirectionSpec, k: int, trials: int) -> tuple[float, float]:
    """Relative error of the mean of ``trials`` reconstructions, and its predicted value."""
    delta = _delta(5)
    counts = allocate_blocks(block_norms(delta), k)
    total = torch.zeros(LAYOUT.numel, dtype=torch.float64)
    for t in range(trials):
        total += _reconstruct(delta, [1000 * t + i for i in range(k)], spec, counts)
    flat = torch.cat([d.reshape(-1) for d in delta])
    variance = sum(
        LAYOUT.tensor_numel(b) * float(d.norm()) ** 2 / counts[b] for b, d in enumerate(delta)
    )
    error = float((total / trials - flat).norm() / flat.norm())
    return error, math.sqrt(variance / trials) / float(flat.norm())


@pytest.mark.parametrize(
    "spec",
    [*KINDS[:2], pytest.param(KINDS[2], marks=pytest.mark.slow)],  # low-rank apply: ~10 s
    ids=lambda s: s.kind.value,
)
def test_projection_is_unbiased(spec: DirectionSpec) -> None:
    few, few_theory = _mean_error(spec, 30, 25)
    many, many_theory = _mean_error(spec, 30, 400)
    # The error of the mean is a norm over 600 coordinates: concentrated near its prediction.
    assert 0.7 < few / few_theory < 1.4
    assert 0.7 < many / many_theory < 1.4
    assert 2.5 < few / many < 6.5  # shrinks like 1/sqrt(trials): sqrt(400/25) = 4


@pytest.mark.parametrize(("k", "trials"), [(10, 200), (100, 20), (400, 10)])
def test_projection_cosine_matches_theory(k: int, trials: int) -> None:
    d = 1000
    layout = ParamLayout(("w",), ((d,),))
    delta = [torch.randn(d, generator=torch.Generator().manual_seed(k), dtype=torch.float64)]
    flat = delta[0]
    dots, sq_norms, cosines = [], [], []
    for t in range(trials):
        seeds = [10_000 * t + i for i in range(k)]
        gammas = project_delta(delta, layout, seeds, GAUSSIAN, (k,))
        rec = torch.zeros(d, dtype=torch.float64)
        for s, g in zip(seeds, gammas, strict=True):
            rec += g * direction(s, layout, GAUSSIAN)[0].double()
        dots.append(float(rec @ flat / (flat @ flat)))
        sq_norms.append(float(rec @ rec / (flat @ flat)))
        cosines.append(_cos(rec, flat))
    assert _within(dots, 1.0)
    assert _within(sq_norms, 1 + (d + 1) / k)
    theory = math.sqrt(k / (d + k))
    assert abs(statistics.fmean(cosines) / theory - 1) < 0.08


# ---------------------------------------------------------------------- allocation


def test_allocate_blocks_examples() -> None:
    assert allocate_blocks([3.0, 1.0], 8) == (6, 2)
    assert allocate_blocks([1.0, 1.0, 1.0], 4) == (2, 1, 1)  # tie: lower index first
    assert allocate_blocks([100.0, 0.0, 1e-9], 10) == (9, 0, 1)  # tiny but nonzero: >= 1
    assert allocate_blocks([0.0, 0.0], 5) == (3, 2)  # all zero: spread evenly
    assert allocate_blocks([1.0, 5.0, 3.0], 2) == (0, 1, 1)  # too few: the largest blocks
    assert allocate_blocks([], 0) == ()
    for bad in ([math.nan], [-1.0], [math.inf]):
        with pytest.raises(ConfigError):
            allocate_blocks(bad, 3)
    with pytest.raises(ConfigError):
        allocate_blocks([1.0], -1)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.floats(min_value=0.0, max_value=1e6, allow_subnormal=False), min_size=1, max_size=30
    ),
    st.integers(min_value=0, max_value=5000),
)
def test_allocate_blocks_properties(norms: list[float], total: int) -> None:
    counts = allocate_blocks(norms, total)
    assert sum(counts) == total and len(counts) == len(norms)
    assert counts == allocate_blocks(list(norms), total)
    nonzero = [i for i, n in enumerate(norms) if n > 0]
    if nonzero and total >= len(nonzero):
        assert all(counts[i] >= 1 for i in nonzero)
        assert all(counts[i] == 0 for i, n in enumerate(norms) if n == 0)
        norm_sum = sum(norms)
        for i in nonzero:  # proportional up to the guaranteed seed and rounding
            assert abs(counts[i] - 1 - (total - len(nonzero)) * norms[i] / norm_sum) < 1 + 1e-6
    for i in range(len(norms)):
        for j in range(len(norms)):
            if norms[i] > norms[j]:
                assert counts[i] >= counts[j]


# ------------------------------------------------------------------- update terms


def test_zo_update_terms() -> None:
    ups = contribution_updates(Codec.ZO, [5, 6], [2.0, -4.0], (), 0.1, 0.5)
    assert ups == [Update(5, -0.1 * 0.5 * 2.0 / 2), Update(6, -0.1 * 0.5 * -4.0 / 2)]
    assert contribution_updates("zo", [5, 6], [2.0, -4.0], [], 0.1, 0.5) == ups


def test_fo_update_terms() -> None:
    ups = contribution_updates(Codec.FO, [1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0], (1, 0, 3), 2.0, 1.0)
    assert [u.block for u in ups] == [0, 2, 2, 2] == seed_blocks((1, 0, 3))
    assert [u.coeff for u in ups] == [-2.0, -4.0, -6.0, -8.0]


@pytest.mark.parametrize(
    ("codec", "seeds", "scalars", "counts"),
    [
        ("zo", [1], [1.0], (1,)),
        ("fo", [1, 2], [1.0, 2.0], (1,)),
        ("fo", [1], [1.0, 2.0], (1,)),
        ("xx", [1], [1.0], ()),
        ("zo", [1], [math.nan], ()),
    ],
)
def test_update_terms_reject_inconsistent_inputs(
    codec: str, seeds: list[int], scalars: list[float], counts: tuple[int, ...]
) -> None:
    with pytest.raises(ConfigError):
        contribution_updates(codec, seeds, scalars, counts, 0.1, 1.0)


def _round_trip(values: Sequence[float], key: int) -> list[float]:
    return dequantize(quantize(values, key))


Scalars = Callable[[Quadratic, list[int]], tuple[list[float], tuple[int, ...]]]


def _one_byte_step(codec: Codec, make_scalars: Scalars, lr: float) -> tuple[float, float]:
    """Loss change and cos(step, −∇L) of one contribution sent in one byte per scalar."""
    q = Quadratic(6)
    seeds = [9000 + i for i in range(200)]
    start_loss, grad, start = q.loss(), q.grad(), q.flat().clone()
    exact, counts = make_scalars(q, seeds)
    sent = _round_trip(exact, seeds[0])
    assert all(
        abs(b - e) <= MAX_RELATIVE_ERROR * abs(e) + 1e-4 * max(map(abs, exact))
        for b, e in zip(sent, exact, strict=True)
    )
    updates = contribution_updates(codec, seeds, sent, counts, lr, 1.0)
    apply_updates_(q.params, LAYOUT, updates, GAUSSIAN)
    return q.loss() - start_loss, _cos(q.flat() - start, -grad)


def test_zo_one_byte_step_descends() -> None:
    def scalars(q: Quadratic, seeds: list[int]) -> tuple[list[float], tuple[int, ...]]:
        return spsa_scalars(q.loss, q.params, LAYOUT, seeds, 1e-3, GAUSSIAN), ()

    change, cos = _one_byte_step(Codec.ZO, scalars, 0.05)
    assert change < 0
    assert abs(cos / math.sqrt(200 / (200 + LAYOUT.numel)) - 1) < 0.3


def test_fo_one_byte_step_descends() -> None:
    def scalars(q: Quadratic, seeds: list[int]) -> tuple[list[float], tuple[int, ...]]:
        flat = 0.05 * q.grad()  # Δ = θ_start − θ_end of one local SGD step
        sizes = [LAYOUT.tensor_numel(i) for i in range(len(LAYOUT))]
        parts = torch.split(flat, sizes)
        delta = [t.reshape(s) for t, s in zip(parts, LAYOUT.shapes, strict=True)]
        counts = allocate_blocks(block_norms(delta), len(seeds))
        return project_delta(delta, LAYOUT, seeds, GAUSSIAN, counts), counts

    change, cos = _one_byte_step(Codec.FO, scalars, 1.0)
    assert change < 0
    assert abs(cos / math.sqrt(200 / (200 + LAYOUT.numel)) - 1) < 0.3
