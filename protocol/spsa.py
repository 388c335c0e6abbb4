"""Zeroth-order scalars: SPSA central differences along shared-random directions.

For each seed s the scalar is ``g = (L(θ + εz) − L(θ − εz)) / 2ε`` with ``z = z(s)`` from
``protocol.perturb.direction``; ``E_z[g z] = ∇L + O(ε²)``. ``z`` is generated once per seed and
used for both evaluation points, and both points are set from a saved copy of θ, so θ is
restored bit for bit after every seed (no ``+ε, −2ε, +ε`` drift), even if ``loss`` raises.
A validator recomputes a sampled scalar by calling this with that single seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from protocol.errors import ConfigError
from protocol.layout import ParamLayout
from protocol.perturb import DirectionSpec, direction


def spsa_scalars(
    loss: Callable[[], float],
    params: Sequence[torch.Tensor],
    layout: ParamLayout,
    seeds: Sequence[int],
    eps: float,
    spec: DirectionSpec,
) -> list[float]:
    """One central-difference directional derivative per seed; ``params`` restored exactly.

    ``loss`` evaluates the model that owns ``params`` on a fixed batch (deterministically: eval
    mode, same batch for both points). It runs under ``torch.no_grad``.
    """
    layout.check_params(params)
    if not (math.isfinite(eps) and eps > 0.0):
        raise ConfigError(f"spsa eps must be finite and positive, got {eps!r}")
    saved = [p.detach().clone() for p in params]
    scalars = []
    try:
        with torch.no_grad():
            for seed in seeds:
                steps = _scaled_direction(seed, params, layout, spec, eps)
                plus = _loss_at(loss, params, saved, steps, torch.Tensor.add_)
                minus = _loss_at(loss, params, saved, steps, torch.Tensor.sub_)
                scalars.append((plus - minus) / (2.0 * eps))
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)
    return scalars


def _scaled_direction(
    seed: int,
    params: Sequence[torch.Tensor],
    layout: ParamLayout,
    spec: DirectionSpec,
    eps: float,
) -> list[torch.Tensor]:
    """``eps * z(seed)`` per tensor in each parameter's dtype and device.

    A separate multiply and add (never a fused ``add_(z, alpha=eps)``, which may or may not use
    FMA) makes the evaluation points bit-identical on every machine, like ``protocol.apply``.
    """
    out = []
    for z, p in zip(direction(seed, layout, spec), params, strict=True):
        z = z.to(device=p.device, dtype=p.dtype)
        out.append(z.mul_(torch.tensor(eps, dtype=torch.float64).to(p.dtype).to(p.device)))
    return out


def _loss_at(
    loss: Callable[[], float],
    params: Sequence[torch.Tensor],
    saved: Sequence[torch.Tensor],
    steps: Sequence[torch.Tensor],
    move: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> float:
    """``loss`` with ``params`` set to ``saved`` moved by ``steps`` (``add_`` or ``sub_``)."""
    for p, s, step in zip(params, saved, steps, strict=True):
        p.copy_(s)
        move(p, step)
    return float(loss())
