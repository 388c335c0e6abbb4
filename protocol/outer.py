"""The outer step: how a round's certified update moves the model (a consensus rule).

A round's certified update ``d`` is the sum of its weighted terms (``protocol.apply``'s rule
applied to zeros; the terms already carry ``-outer_lr``). With outer momentum ``mu = 0`` it is
added to the parameters term by term, exactly as ``protocol.apply`` does (plain SGD). With
``0 < mu < 1`` the network steps with Nesterov momentum (DiLoCo's outer optimizer), keeping one
buffer ``b`` per trainable tensor, zero at genesis:

    b = b * mu + d            (t = b * mu, then b = t + d)
    p = p + (d + b * mu)      (s = b * mu, then s = s + d, then p = p + s)

Every arrow is one IEEE float operation rounded once in the parameter's dtype (no fused
multiply-add: ``add_(x, alpha=...)`` would take one on some paths), so the buffers are
bit-identical on every replica whatever the vector width or thread count. The buffers are part
of the replicated state: the state hash (``state_hash``) covers them once they are non-zero,
catching up by replaying certified rounds rebuilds them, and a checkpoint stores them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from protocol.domain_types import ModelHash
from protocol.errors import ConfigError
from protocol.model_hash import model_hash

__all__ = [
    "MOMENTUM_PREFIX", "check_momentum", "momentum_names", "nesterov_step_", "state_hash",
]

MOMENTUM_PREFIX = "outer_momentum."
"""Names of the momentum buffers in the state hash and in checkpoints: prefix + tensor name."""

MAX_MOMENTUM = 0.999


def check_momentum(momentum: float) -> float:
    """``momentum`` as a float in [0, MAX_MOMENTUM]; ConfigError otherwise."""
    if isinstance(momentum, bool) or not isinstance(momentum, int | float):
        raise ConfigError(f"outer_momentum must be a number, got {momentum!r}")
    value = float(momentum)
    if not 0.0 <= value <= MAX_MOMENTUM:
        raise ConfigError(f"outer_momentum must be in [0, {MAX_MOMENTUM}], got {momentum!r}")
    return value


def nesterov_step_(
    params: Sequence[torch.Tensor],
    buffers: Sequence[torch.Tensor],
    deltas: Sequence[torch.Tensor],
    momentum: float,
) -> None:
    """One Nesterov outer step in place (see the module docstring): buffers, then params."""
    if not len(params) == len(buffers) == len(deltas):
        raise ConfigError("outer step: params, buffers and deltas differ in length")
    with torch.no_grad():
        for param, buf, delta in zip(params, buffers, deltas, strict=True):
            if not param.shape == buf.shape == delta.shape:
                raise ConfigError("outer step: a buffer or delta does not match its tensor")
            mu = torch.tensor(momentum, dtype=param.dtype, device=param.device)
            buf.mul_(mu)
            buf.add_(delta)
            step = torch.mul(buf, mu)
            step.add_(delta)
            param.add_(step)


def momentum_names(names: Sequence[str]) -> list[str]:
    """The buffer names of the tensors ``names`` (state hash and checkpoint keys)."""
    return [MOMENTUM_PREFIX + name for name in names]


def state_hash(
    named: Sequence[tuple[str, torch.Tensor]], buffers: Sequence[torch.Tensor] = ()
) -> ModelHash:
    """The hash of the replicated state: the trainable tensors, then the momentum buffers.

    Without buffers (plain SGD), or while every buffer's bytes are all zero (at genesis, so the
    network's base model hash names its starting state), it is ``protocol.model_hash`` of the
    tensors alone; the two forms hash different tensor counts, so they never collide.
    """
    if buffers and len(buffers) != len(named):
        raise ConfigError("state hash: one momentum buffer per trainable tensor")
    if not buffers or all(_zero_bytes(b) for b in buffers):
        return model_hash(named)
    names = momentum_names([name for name, _ in named])
    return model_hash([*named, *zip(names, buffers, strict=True)])


def _zero_bytes(tensor: torch.Tensor) -> bool:
    """Whether every byte of ``tensor`` is zero (-0.0 is not)."""
    flat = tensor.detach().reshape(-1)
    if flat.numel() == 0:
        return True
    if flat.element_size() == 4:
        flat = flat.view(torch.int32)
    elif flat.element_size() == 8:
        flat = flat.view(torch.int64)
    elif flat.element_size() == 2:
        flat = flat.view(torch.int16)
    return not bool(flat.any())
