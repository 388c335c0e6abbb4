"""A generated classification problem (nothing downloaded), split over nodes.

Each class is a mixture of a few Gaussian blobs in feature space, so a linear model is not
enough and an MLP has something to learn; a fixed held-out set is the validation data z'.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DataSpec:
    """Sizes of the generated problem."""

    features: int = 10
    classes: int = 4
    blobs_per_class: int = 3
    per_node: int = 128
    validation: int = 256
    noise: float = 0.8
    seed: int = 0


@dataclass(frozen=True)
class NodeData:
    """Training shards per node (x: [n, m, f], y: [n, m]) and a shared validation set."""

    x: torch.Tensor
    y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor


def _sample(spec: DataSpec, centres: torch.Tensor, count: int, gen: torch.Generator) -> tuple[
    torch.Tensor, torch.Tensor
]:
    blob = torch.randint(0, centres.shape[0], (count,), generator=gen)
    noise = torch.randn(count, spec.features, generator=gen, dtype=torch.float64)
    x = centres[blob] + spec.noise * noise
    return x, blob // spec.blobs_per_class


def make_node_data(spec: DataSpec, nodes: int, permuted: tuple[int, ...] = ()) -> NodeData:
    """Shards for ``nodes`` nodes; nodes in ``permuted`` get their labels randomly permuted
    (the feature-to-label mapping is destroyed: DICE's anomalous node)."""
    gen = torch.Generator().manual_seed(spec.seed)
    centres = 2.0 * torch.randn(
        spec.classes * spec.blobs_per_class, spec.features, generator=gen, dtype=torch.float64
    )
    x, y = _sample(spec, centres, nodes * spec.per_node, gen)
    x = x.view(nodes, spec.per_node, spec.features)
    y = y.view(nodes, spec.per_node).clone()
    for node in permuted:
        y[node] = y[node][torch.randperm(spec.per_node, generator=gen)]
    val_x, val_y = _sample(spec, centres, spec.validation, gen)
    return NodeData(x=x, y=y, val_x=val_x, val_y=val_y)
