"""A one-hidden-layer tanh MLP on flat parameter vectors, batched over any leading dims.

Parameters live in one float64 vector per model so that a whole swarm (and every
counterfactual copy of it) is one tensor [..., d]; tanh keeps the loss smooth for finite
differences.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MLPShape:
    """Layer sizes."""

    inputs: int
    hidden: int
    classes: int

    @property
    def numel(self) -> int:
        """Length of the flat parameter vector."""
        return (self.inputs + 1) * self.hidden + (self.hidden + 1) * self.classes

    def init(self, seed: int) -> torch.Tensor:
        """A deterministic initial parameter vector (Xavier-like scale)."""
        gen = torch.Generator().manual_seed(seed)
        theta = torch.zeros(self.numel, dtype=torch.float64)
        w1, _, w2, _ = self.unflatten(theta)
        w1.copy_(torch.randn(w1.shape, generator=gen, dtype=torch.float64) / self.inputs**0.5)
        w2.copy_(torch.randn(w2.shape, generator=gen, dtype=torch.float64) / self.hidden**0.5)
        return theta

    def unflatten(self, theta: torch.Tensor) -> tuple[
        torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor
    ]:
        """Views (w1 [..., in, h], b1 [..., h], w2 [..., h, c], b2 [..., c]) into ``theta``."""
        lead = theta.shape[:-1]
        i, h, c = self.inputs, self.hidden, self.classes
        a = i * h
        b = a + h
        e = b + h * c
        return (
            theta[..., :a].reshape(*lead, i, h),
            theta[..., a:b],
            theta[..., b:e].reshape(*lead, h, c),
            theta[..., e:].reshape(*lead, c),
        )


def mean_loss(
    shape: MLPShape, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy per model: theta [..., d], x [..., m, f] or [m, f], y like x -> [...]."""
    w1, b1, w2, b2 = shape.unflatten(theta)
    hidden = torch.tanh(x @ w1 + b1.unsqueeze(-2))
    logits = hidden @ w2 + b2.unsqueeze(-2)
    logp = torch.log_softmax(logits, dim=-1)
    target = y.expand(logp.shape[:-1]).unsqueeze(-1)
    return -logp.gather(-1, target).squeeze(-1).mean(dim=-1)


def loss_gradient(
    shape: MLPShape, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """d mean_loss / d theta for every model at once (models are independent)."""
    with torch.enable_grad():
        leaf = theta.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(mean_loss(shape, leaf, x, y).sum(), leaf)
    return grad
