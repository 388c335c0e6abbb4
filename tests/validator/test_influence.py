import math

import pytest
import torch

from protocol.errors import ConfigError
from validator.influence import (
    cascade_influence,
    check_mixing,
    directional_derivative,
    mixing_power,
    realized_influence,
)


def _quadratic() -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(6, 6, generator=gen, dtype=torch.float64)
    hess = a @ a.T + torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=gen, dtype=torch.float64)
    params = [torch.randn(2, 3, generator=gen, dtype=torch.float64),
              torch.randn(6, generator=gen, dtype=torch.float64)[:0]]
    return params, hess, b


def test_directional_derivative_matches_gradient_and_restores_exactly() -> None:
    params, hess, b = _quadratic()

    def loss() -> float:
        x = params[0].reshape(-1)
        return float(0.5 * x @ hess @ x + b @ x)

    before = [p.clone() for p in params]
    v = [torch.randn(2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)),
         torch.zeros(0, dtype=torch.float64)]
    grad = hess @ params[0].reshape(-1) + b
    d = directional_derivative(loss, params, v, eps=1e-3)
    assert d == pytest.approx(float(grad @ v[0].reshape(-1)), rel=1e-9)  # exact on a quadratic
    assert all(torch.equal(p, q) for p, q in zip(params, before, strict=True))


def test_params_restored_even_when_loss_raises() -> None:
    p = torch.ones(3)
    before = p.clone()

    def boom() -> float:
        raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError):
        directional_derivative(boom, [p], [torch.ones(3)], 0.1)
    assert torch.equal(p, before)


def test_realized_influence_is_gradient_dot_displacement() -> None:
    params, hess, b = _quadratic()

    def loss() -> float:
        x = params[0].reshape(-1)
        return float(0.5 * x @ hess @ x + b @ x)

    delta = [0.01 * torch.arange(6, dtype=torch.float64).reshape(2, 3),
             torch.zeros(0, dtype=torch.float64)]
    grad = hess @ params[0].reshape(-1) + b
    expected = float(grad @ delta[0].reshape(-1))
    assert realized_influence(loss, params, delta) == pytest.approx(expected, rel=1e-9)
    assert realized_influence(loss, params, delta, eps=1e-4) == pytest.approx(expected, rel=1e-7)
    zero = [torch.zeros(2, 3, dtype=torch.float64), torch.zeros(0, dtype=torch.float64)]
    assert realized_influence(loss, params, zero) == 0.0


def test_nonfinite_loss_gives_nonfinite_influence_not_a_crash() -> None:
    p = torch.ones(2)
    assert math.isnan(realized_influence(lambda: math.nan, [p], [torch.ones(2)]))


def test_cascade_uses_powers_of_the_mixing_matrix() -> None:
    w = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5]], dtype=torch.float64)
    assert torch.equal(mixing_power(w, 0), torch.eye(3, dtype=torch.float64))
    d = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    out = cascade_influence(w, source=1, hops=2, derivatives=d, coeff=-0.1)
    w2 = w @ w
    assert torch.allclose(out, -0.1 * w2[:, 1] * d)
    assert float(out[2]) == pytest.approx(-0.1 * 0.25 * 3.0)


def test_bad_mixing_matrices_are_refused() -> None:
    with pytest.raises(ConfigError):
        check_mixing(torch.ones(2, 3) / 3)
    with pytest.raises(ConfigError):
        check_mixing(torch.tensor([[0.5, 0.6], [0.5, 0.5]]))
    with pytest.raises(ConfigError):
        check_mixing(torch.tensor([[1.5, -0.5], [0.5, 0.5]]))
    with pytest.raises(ConfigError):
        mixing_power(torch.eye(2), -1)
    with pytest.raises(ConfigError):
        cascade_influence(torch.eye(2, dtype=torch.float64), 3, 1, [0.0, 0.0])
