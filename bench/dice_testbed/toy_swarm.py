"""Adapt-then-communicate decentralized training of the testbed MLP, batched over copies.

One round: every node moves by its local displacement (an SGD step, or a seed-based SPSA step
-lr * g * z(s)), then gossips: theta_k <- sum_l W[k, l] theta_l. States are tensors
[..., n, d] so that the factual run and all its counterfactual copies advance together; the
batch and seed schedule depends only on (round, node), so every copy sees the same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import torch

from bench.dice_testbed.data import NodeData
from bench.dice_testbed.mlp import MLPShape, loss_gradient, mean_loss


class Mode(StrEnum):
    """How a node computes its local displacement."""

    SGD = "sgd"  # exact gradient of its batch
    SPSA = "spsa"  # one seed: -lr * g * z(s), g a central difference along z(s)


@dataclass(frozen=True)
class Step:
    """One round's local displacements; for SPSA also the seed directions and coefficients."""

    displacement: torch.Tensor  # [..., n, d]
    directions: torch.Tensor | None = None  # [n, d] z(s) per node
    coeffs: torch.Tensor | None = None  # [..., n] -lr * g


@dataclass
class Swarm:
    """Nodes, their data, the topology and the local rule."""

    shape: MLPShape
    data: NodeData
    mixing: torch.Tensor
    mode: Mode
    lr: float
    batch: int
    spsa_eps: float
    seed: int

    @property
    def nodes(self) -> int:
        return int(self.mixing.shape[0])

    def batch_at(self, round_index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each node's minibatch for this round (x [n, m, f], y [n, m])."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + round_index)
        per_node = self.data.x.shape[1]
        idx = torch.stack([torch.randperm(per_node, generator=gen)[: self.batch]
                           for _ in range(self.nodes)])
        x = torch.gather(self.data.x, 1, idx.unsqueeze(-1).expand(-1, -1, self.data.x.shape[2]))
        y = torch.gather(self.data.y, 1, idx)
        return x, y

    def directions_at(self, round_index: int) -> torch.Tensor:
        """Each node's seed direction z(s) for this round, [n, d], standard normal."""
        gen = torch.Generator().manual_seed(self.seed * 7_919 + round_index + 10**9)
        return torch.randn(self.nodes, self.shape.numel, generator=gen, dtype=torch.float64)

    def local_step(self, theta: torch.Tensor, round_index: int) -> Step:
        """The displacement every node applies in ``round_index`` from states ``theta``."""
        x, y = self.batch_at(round_index)
        if self.mode is Mode.SGD:
            return Step(displacement=-self.lr * loss_gradient(self.shape, theta, x, y))
        z = self.directions_at(round_index)
        plus = mean_loss(self.shape, theta + self.spsa_eps * z, x, y)
        minus = mean_loss(self.shape, theta - self.spsa_eps * z, x, y)
        coeffs = -self.lr * (plus - minus) / (2.0 * self.spsa_eps)
        return Step(displacement=coeffs.unsqueeze(-1) * z, directions=z, coeffs=coeffs)

    def mix(self, theta: torch.Tensor) -> torch.Tensor:
        """Gossip: theta_k <- sum_l W[k, l] theta_l (over the node axis, -2)."""
        return torch.einsum("kl,...ld->...kd", self.mixing, theta)

    def validation_loss(self, theta: torch.Tensor) -> torch.Tensor:
        """Validation loss of every model in ``theta`` [..., d] -> [...]."""
        return mean_loss(self.shape, theta, self.data.val_x, self.data.val_y)

    def validation_gradient(self, theta: torch.Tensor) -> torch.Tensor:
        return loss_gradient(self.shape, theta, self.data.val_x, self.data.val_y)

    def advance(self, theta: torch.Tensor, round_index: int) -> torch.Tensor:
        """One full round on the factual states."""
        return self.mix(theta + self.local_step(theta, round_index).displacement)
