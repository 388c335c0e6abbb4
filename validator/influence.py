"""DICE influence of a contribution on a validation loss, in its cheap first-order forms.

Realized influence of a displacement delta applied to a model theta is the change it causes in
the validation loss, to first order ``grad L_val(theta)^T delta`` (DICE-E; negative = helpful).
It needs no gradient: a central finite difference along delta costs two forward passes, however
many (seed, scalar) terms make up delta (research/algorithms.md section 4.4).

The cascade (DICE Thm 1 with (I - eta H) ~ I): under gossip with a row-stochastic mixing matrix
W, the part of node j's displacement present at node k after rho rounds is (W^rho)[k, j] * delta,
so node k's influence at hop rho is (W^rho)[k, j] * grad L_val(theta_k^{t+rho})^T delta. For a
seed contribution delta = coeff * z(s) (coeff = -lr * g) this is the SPSA form
coeff * (W^rho)[k, j] * D_k(s) with D_k(s) the directional derivative along z(s).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from protocol.errors import ConfigError

LossFn = Callable[[], float]

ROW_SUM_TOLERANCE = 1e-9


def directional_derivative(
    loss: LossFn,
    params: Sequence[torch.Tensor],
    direction: Sequence[torch.Tensor],
    eps: float,
) -> float:
    """(L(theta + eps v) - L(theta - eps v)) / (2 eps), with ``loss`` reading ``params`` in place.

    ``params`` are restored exactly afterwards (copied back, not shifted back), even if ``loss``
    raises. A non-finite loss gives a non-finite result; callers treat that as failing.
    """
    if not (math.isfinite(eps) and eps > 0.0):
        raise ConfigError(f"finite-difference eps must be positive, got {eps}")
    if len(params) != len(direction):
        raise ConfigError(f"{len(params)} parameter tensors but {len(direction)} direction tensors")
    backup = [p.detach().clone() for p in params]
    try:
        with torch.no_grad():
            _shift_(params, backup, direction, eps)
            plus = float(loss())
            _shift_(params, backup, direction, -eps)
            minus = float(loss())
    finally:
        with torch.no_grad():
            for p, b in zip(params, backup, strict=True):
                p.copy_(b)
    return (plus - minus) / (2.0 * eps)


def _shift_(
    params: Sequence[torch.Tensor],
    base: Sequence[torch.Tensor],
    direction: Sequence[torch.Tensor],
    step: float,
) -> None:
    for p, b, v in zip(params, base, direction, strict=True):
        p.copy_(b)
        p.add_(v.to(dtype=p.dtype, device=p.device), alpha=step)


def displacement_norm(displacement: Sequence[torch.Tensor]) -> float:
    """The Euclidean norm of the whole displacement, accumulated in float64."""
    total = sum(float(torch.sum(d.detach().double() ** 2)) for d in displacement)
    return math.sqrt(total)


def realized_influence(
    loss: LossFn,
    params: Sequence[torch.Tensor],
    displacement: Sequence[torch.Tensor],
    eps: float | None = None,
) -> float:
    """First-order change of ``loss`` caused by ``displacement`` at ``params``: grad L^T delta.

    One central difference along delta / |delta|, scaled by |delta| (two forward passes).
    ``eps`` is the step length in parameter space; by default |delta| itself, i.e.
    (L(theta + delta) - L(theta - delta)) / 2, which is scale-free and exact up to third-order
    terms. A zero displacement has influence exactly 0. In float32, pass an ``eps`` large
    enough that the loss difference clears rounding noise (machine eps * L / eps << |D|).
    """
    norm = displacement_norm(displacement)
    if norm == 0.0:
        return 0.0
    if not math.isfinite(norm):
        return math.nan
    unit = [d.detach().double() / norm for d in displacement]
    step = norm if eps is None else eps
    return norm * directional_derivative(loss, params, unit, step)


def check_mixing(mixing: torch.Tensor) -> None:
    """Raise ConfigError unless ``mixing`` is a square, non-negative, row-stochastic matrix."""
    if mixing.dim() != 2 or mixing.shape[0] != mixing.shape[1]:
        raise ConfigError(f"mixing matrix must be square, got shape {tuple(mixing.shape)}")
    w = mixing.double()
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ConfigError("mixing matrix must be finite and non-negative")
    if float((w.sum(dim=1) - 1.0).abs().max()) > ROW_SUM_TOLERANCE:
        raise ConfigError("mixing matrix rows must sum to 1")


def mixing_power(mixing: torch.Tensor, hops: int) -> torch.Tensor:
    """W^hops in float64 (W^0 = I: the displacement is entirely at its source)."""
    if hops < 0:
        raise ConfigError(f"hops must be >= 0, got {hops}")
    check_mixing(mixing)
    power: torch.Tensor = torch.linalg.matrix_power(mixing.double(), hops)
    return power


def cascade_influence(
    mixing: torch.Tensor,
    source: int,
    hops: int,
    derivatives: Sequence[float] | torch.Tensor,
    coeff: float = 1.0,
) -> torch.Tensor:
    """Per-receiver influence at hop ``hops`` of a displacement made by node ``source``.

    ``derivatives[k]`` is node k's validation-loss derivative at round t + hops along the
    displacement: either along delta itself (coeff = 1, e.g. from ``realized_influence``) or along
    the seed direction z(s) (coeff = -lr * g, the SPSA form). Returns
    coeff * (W^hops)[k, source] * derivatives[k] for every node k, in float64.
    """
    power = mixing_power(mixing, hops)
    n = power.shape[0]
    if not 0 <= source < n:
        raise ConfigError(f"source {source} outside 0..{n - 1}")
    d = torch.as_tensor(derivatives, dtype=torch.float64)
    if d.shape != (n,):
        raise ConfigError(f"expected {n} derivatives, got shape {tuple(d.shape)}")
    return coeff * power[:, source] * d
